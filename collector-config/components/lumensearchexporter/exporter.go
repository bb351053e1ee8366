package lumensearchexporter // import "github.com/lumen-otel/lumen-otel/collector-config/components/lumensearchexporter"

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"
)

// rounds of re-sending only the documents the node answered 429/5xx for, inside one push
const itemRetryRounds = 3

type logsExporter struct {
	cfg      *Config
	settings component.TelemetrySettings
	client   *http.Client
	bulkURL  string
	action   []byte // the bulk action line, the same for every document
}

func newLogsExporter(cfg *Config, set exporter.Settings) *logsExporter {
	action, _ := json.Marshal(map[string]map[string]string{cfg.BulkAction: {"_index": cfg.LogsIndex}})
	return &logsExporter{
		cfg:      cfg,
		settings: set.TelemetrySettings,
		bulkURL:  strings.TrimRight(cfg.ClientConfig.Endpoint, "/") + "/_bulk",
		action:   append(action, '\n'),
	}
}

func (e *logsExporter) start(ctx context.Context, host component.Host) error {
	client, err := e.cfg.ClientConfig.ToClient(ctx, host.GetExtensions(), e.settings)
	if err != nil {
		return err
	}
	e.client = client
	return nil
}

func (e *logsExporter) push(ctx context.Context, logs plog.Logs) error {
	docs := make([][]byte, 0, logs.LogRecordCount())
	for i := 0; i < logs.ResourceLogs().Len(); i++ {
		rl := logs.ResourceLogs().At(i)
		resource := rl.Resource().Attributes()
		for j := 0; j < rl.ScopeLogs().Len(); j++ {
			sl := rl.ScopeLogs().At(j)
			for k := 0; k < sl.LogRecords().Len(); k++ {
				doc, err := json.Marshal(document(resource, sl.Scope(), sl.LogRecords().At(k)))
				if err != nil {
					return consumererror.NewPermanent(fmt.Errorf("encoding a log record: %w", err))
				}
				docs = append(docs, doc)
			}
		}
	}
	for round := 0; len(docs) > 0; round++ {
		retry, dropped, err := e.bulk(ctx, docs)
		if err != nil {
			return err // nothing was indexed: the exporter helper retries the whole batch
		}
		if dropped > 0 {
			e.settings.Logger.Warn("the search node rejected documents", zap.Int("dropped", dropped))
		}
		if len(retry) == 0 {
			return nil
		}
		if round+1 >= itemRetryRounds {
			return consumererror.NewPermanent(fmt.Errorf("%d documents still refused after %d rounds", len(retry), itemRetryRounds))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(round+1) * 500 * time.Millisecond):
		}
		docs = retry
	}
	return nil
}

type bulkResponse struct {
	Errors bool                                `json:"errors"`
	Items  []map[string]bulkItemResponseStatus `json:"items"`
}

type bulkItemResponseStatus struct {
	Status int `json:"status"`
	Error  struct {
		Type   string `json:"type"`
		Reason string `json:"reason"`
	} `json:"error"`
}

// bulk sends docs in one _bulk request; it returns the documents worth sending again (429, 5xx)
// and how many were refused for good (a mapping error, say).
func (e *logsExporter) bulk(ctx context.Context, docs [][]byte) ([][]byte, int, error) {
	var body bytes.Buffer
	for _, doc := range docs {
		body.Write(e.action)
		body.Write(doc)
		body.WriteByte('\n')
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.bulkURL, &body)
	if err != nil {
		return nil, 0, consumererror.NewPermanent(err)
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	switch {
	case e.cfg.APIKey != "":
		req.Header.Set("Authorization", "ApiKey "+string(e.cfg.APIKey))
	case e.cfg.User != "":
		req.SetBasicAuth(e.cfg.User, string(e.cfg.Password))
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("bulk request to %s: %w", e.cfg.ClientConfig.Endpoint, err)
	}
	defer resp.Body.Close()
	payload, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, 0, fmt.Errorf("reading the bulk response: %w", err)
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
		return nil, 0, fmt.Errorf("bulk request answered %d: %s", resp.StatusCode, snippet(payload))
	}
	if resp.StatusCode != http.StatusOK {
		return nil, 0, consumererror.NewPermanent(fmt.Errorf("bulk request answered %d: %s", resp.StatusCode, snippet(payload)))
	}
	var parsed bulkResponse
	if err := json.Unmarshal(payload, &parsed); err != nil {
		return nil, 0, consumererror.NewPermanent(fmt.Errorf("not a bulk response: %w", err))
	}
	if !parsed.Errors {
		return nil, 0, nil
	}
	if len(parsed.Items) != len(docs) {
		return nil, 0, consumererror.NewPermanent(errors.New("the bulk response does not have one item per document"))
	}
	var retry [][]byte
	dropped := 0
	for i, item := range parsed.Items {
		for _, status := range item {
			switch {
			case status.Status < 300:
			case status.Status == http.StatusTooManyRequests || status.Status >= 500:
				retry = append(retry, docs[i])
			default:
				dropped++
				// the reason names the field and the type, never the document
				e.settings.Logger.Debug("document refused", zap.Int("status", status.Status),
					zap.String("type", status.Error.Type), zap.String("reason", status.Error.Reason))
			}
		}
	}
	return retry, dropped, nil
}

func snippet(b []byte) string {
	if len(b) > 300 {
		b = b[:300]
	}
	return string(b)
}

// document is one log record as a flat JSON object, in the shape of lumen-otel's JSON log lines.
// Attribute and resource keys have their dots replaced by underscores (code.function.name →
// code_function_name, as Loki does), so that "a.b" and "a.b.c" never fight over one field, and
// every value is a string, so that one key is one mapping type whatever the services send.
func document(resource pcommon.Map, scope pcommon.InstrumentationScope, lr plog.LogRecord) map[string]any {
	when := lr.Timestamp()
	if when == 0 {
		when = lr.ObservedTimestamp()
	}
	if when == 0 {
		when = pcommon.NewTimestampFromTime(time.Now())
	}
	doc := map[string]any{
		"@timestamp":      when.AsTime().UTC().Format(time.RFC3339Nano),
		"level":           level(lr),
		"severity_number": int32(lr.SeverityNumber()),
		"severity_text":   lr.SeverityText(),
		"logger":          scope.Name(),
		"message":         lr.Body().AsString(),
	}
	if name, ok := resource.Get("service.name"); ok {
		doc["service_name"] = name.AsString()
	}
	if host, ok := resource.Get("host.name"); ok {
		doc["hostname"] = host.AsString()
	}
	if !lr.TraceID().IsEmpty() {
		doc["trace_id"] = lr.TraceID().String()
	}
	if !lr.SpanID().IsEmpty() {
		doc["span_id"] = lr.SpanID().String()
	}
	attributes := map[string]string{}
	lr.Attributes().Range(func(k string, v pcommon.Value) bool {
		switch k {
		case "correlation_id":
			doc["correlation_id"] = v.AsString()
		case "trace_id", "span_id":
			if _, set := doc[k]; !set && v.AsString() != "" {
				doc[k] = v.AsString()
			}
		default:
			attributes[dedot(k)] = v.AsString()
		}
		return true
	})
	if len(attributes) > 0 {
		doc["attributes"] = attributes
	}
	res := map[string]string{}
	resource.Range(func(k string, v pcommon.Value) bool {
		res[dedot(k)] = v.AsString()
		return true
	})
	if len(res) > 0 {
		doc["resource"] = res
	}
	return doc
}

func dedot(key string) string { return strings.ReplaceAll(key, ".", "_") }

// level: a name from the severity number, in Python's words (the SDKs disagree on the text:
// WARN vs WARNING), so that level:WARNING finds every service's warnings; the record's own text
// when it has no number. The text itself is kept as severity_text.
func level(lr plog.LogRecord) string {
	n := lr.SeverityNumber()
	switch {
	case n == plog.SeverityNumberUnspecified:
		if text := lr.SeverityText(); text != "" {
			return strings.ToUpper(text)
		}
		return "INFO"
	case n < plog.SeverityNumberDebug:
		return "TRACE"
	case n < plog.SeverityNumberInfo:
		return "DEBUG"
	case n < plog.SeverityNumberWarn:
		return "INFO"
	case n < plog.SeverityNumberError:
		return "WARNING"
	case n < plog.SeverityNumberFatal:
		return "ERROR"
	default:
		return "CRITICAL"
	}
}
