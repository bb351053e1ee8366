package lumensearchexporter

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

func oneRecord(body string, severity plog.SeverityNumber, text string) plog.Logs {
	logs := plog.NewLogs()
	rl := logs.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "radiology")
	rl.Resource().Attributes().PutStr("host.name", "node-1")
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName("radiology.views")
	lr := sl.LogRecords().AppendEmpty()
	lr.SetTimestamp(pcommon.NewTimestampFromTime(time.Date(2026, 12, 1, 8, 30, 0, 123456789, time.UTC)))
	lr.Body().SetStr(body)
	lr.SetSeverityNumber(severity)
	lr.SetSeverityText(text)
	lr.SetTraceID(pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	lr.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, 8})
	lr.Attributes().PutStr("correlation_id", "c-1")
	lr.Attributes().PutStr("code.function.name", "study")
	lr.Attributes().PutInt("attempt", 2)
	return logs
}

func TestDocumentHasTheShapeOfALumenJSONLine(t *testing.T) {
	logs := oneRecord("Study opened", plog.SeverityNumberWarn, "WARN")
	rl := logs.ResourceLogs().At(0)
	sl := rl.ScopeLogs().At(0)
	doc := document(rl.Resource().Attributes(), sl.Scope(), sl.LogRecords().At(0))
	want := map[string]any{
		"@timestamp":      "2026-12-01T08:30:00.123456789Z",
		"level":           "WARNING",
		"severity_number": int32(13),
		"severity_text":   "WARN",
		"service_name":    "radiology",
		"hostname":        "node-1",
		"logger":          "radiology.views",
		"message":         "Study opened",
		"correlation_id":  "c-1",
		"trace_id":        "0102030405060708090a0b0c0d0e0f10",
		"span_id":         "0102030405060708",
	}
	for k, v := range want {
		if doc[k] != v {
			t.Errorf("%s = %#v, want %#v", k, doc[k], v)
		}
	}
	attrs := doc["attributes"].(map[string]string)
	if attrs["code_function_name"] != "study" || attrs["attempt"] != "2" || attrs["correlation_id"] != "" {
		t.Errorf("attributes = %v", attrs)
	}
	if res := doc["resource"].(map[string]string); res["service_name"] != "radiology" {
		t.Errorf("resource = %v", res)
	}
}

func TestValidate(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "http.endpoint") {
		t.Fatalf("no endpoint: %v", err)
	}
	cfg.ClientConfig.Endpoint = "http://127.0.0.1:9200"
	if err := cfg.Validate(); err != nil {
		t.Fatalf("defaults + endpoint: %v", err)
	}
	cfg.BulkAction = "update"
	if err := cfg.Validate(); err == nil {
		t.Fatal("bulk_action update accepted")
	}
}

// a _bulk endpoint answering from a script: one status per document, per request
type fakeBulk struct {
	mu       sync.Mutex
	statuses [][]int
	seen     []int // documents per request
	status   int   // the HTTP status, 200 unless set
}

func (f *fakeBulk) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.URL.Path != "/_bulk" || r.Header.Get("Content-Type") != "application/x-ndjson" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	lines := 0
	scanner := bufio.NewScanner(r.Body)
	for scanner.Scan() {
		lines++
	}
	docs := lines / 2
	f.seen = append(f.seen, docs)
	if f.status != 0 {
		w.WriteHeader(f.status)
		return
	}
	var statuses []int
	if len(f.statuses) > 0 {
		statuses, f.statuses = f.statuses[0], f.statuses[1:]
	}
	items := make([]map[string]any, docs)
	errorsSeen := false
	for i := range items {
		status := 201
		if i < len(statuses) {
			status = statuses[i]
		}
		errorsSeen = errorsSeen || status >= 300
		items[i] = map[string]any{"create": map[string]any{"status": status}}
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": errorsSeen, "items": items})
}

func pushTo(t *testing.T, server *httptest.Server, logs plog.Logs) error {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.ClientConfig.Endpoint = server.URL
	exp := newLogsExporter(cfg, exportertest.NewNopSettings(componentType))
	if err := exp.start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	return exp.push(context.Background(), logs)
}

func threeRecords() plog.Logs {
	logs := oneRecord("a", plog.SeverityNumberInfo, "INFO")
	records := logs.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	records.At(0).CopyTo(records.AppendEmpty())
	records.At(0).CopyTo(records.AppendEmpty())
	return logs
}

func TestOnlyTheRefusedDocumentsAreSentAgain(t *testing.T) {
	fake := &fakeBulk{statuses: [][]int{{201, 429, 400}, {201}}}
	server := httptest.NewServer(fake)
	defer server.Close()
	if err := pushTo(t, server, threeRecords()); err != nil {
		t.Fatalf("push: %v", err)
	}
	if got := fake.seen; len(got) != 2 || got[0] != 3 || got[1] != 1 {
		t.Fatalf("documents per request = %v, want [3 1] (the 429 again, the 400 dropped)", got)
	}
}

func TestAServerErrorIsRetryableAndA4xxIsPermanent(t *testing.T) {
	for status, permanent := range map[int]bool{503: false, 429: false, 401: true, 400: true} {
		server := httptest.NewServer(&fakeBulk{status: status})
		err := pushTo(t, server, threeRecords())
		server.Close()
		if err == nil || consumererror.IsPermanent(err) != permanent {
			t.Errorf("HTTP %d: err = %v, permanent = %v, want %v", status, err, consumererror.IsPermanent(err), permanent)
		}
	}
}

func TestDocumentsRefusedThreeRoundsAreGivenUp(t *testing.T) {
	fake := &fakeBulk{statuses: [][]int{{503}, {503}, {503}, {503}}}
	server := httptest.NewServer(fake)
	defer server.Close()
	err := pushTo(t, server, oneRecord("a", plog.SeverityNumberInfo, ""))
	if !consumererror.IsPermanent(err) || len(fake.seen) != itemRetryRounds {
		t.Fatalf("err = %v after %d requests", err, len(fake.seen))
	}
}
