// Package lumensearchexporter sends the gateway's (already redacted) log records to OpenSearch
// or Elasticsearch with the _bulk API, one flat document per record, in the shape of lumen-otel's
// JSON log lines (service_name, level, logger, message, correlation_id, trace_id, span_id, ...).
//
// It exists because the contrib opensearch and elasticsearch exporters are not served by the Go
// module proxy at the release this distribution is pinned to (v0.161.0); its config keys follow
// the contrib opensearch exporter's where they mean the same thing (http, logs_index, bulk_action,
// sending_queue, retry_on_failure), so a later switch is a rename.
package lumensearchexporter // import "github.com/lumen-otel/lumen-otel/collector-config/components/lumensearchexporter"

import (
	"errors"
	"fmt"
	"regexp"

	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
)

// Config of the lumen_search exporter.
type Config struct {
	// http.endpoint is the node's base URL (https://opensearch:9200); http.tls, http.headers and
	// http.timeout as for any collector HTTP client.
	ClientConfig confighttp.ClientConfig                                  `mapstructure:"http"`
	QueueConfig  configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`
	RetryConfig  configretry.BackOffConfig                                `mapstructure:"retry_on_failure"`

	// LogsIndex is the index, alias or data stream the log documents go to.
	LogsIndex string `mapstructure:"logs_index"`
	// BulkAction is "create" (required for data streams) or "index".
	BulkAction string `mapstructure:"bulk_action"`

	// User and Password: HTTP basic authentication (OpenSearch security plugin, Elasticsearch).
	User     string              `mapstructure:"user"`
	Password configopaque.String `mapstructure:"password"`
	// APIKey: Elasticsearch's "Authorization: ApiKey <base64 id:key>"; wins over User/Password.
	APIKey configopaque.String `mapstructure:"api_key"`
}

// an index or data stream name as both engines accept it (lower case, no wildcards or separators)
var indexName = regexp.MustCompile(`^[a-z0-9][a-z0-9._+-]{0,254}$`)

// Validate checks the settings the collector cannot check for us.
func (cfg *Config) Validate() error {
	var errs []error
	if cfg.ClientConfig.Endpoint == "" {
		errs = append(errs, errors.New("http.endpoint must be set"))
	}
	if !indexName.MatchString(cfg.LogsIndex) {
		errs = append(errs, fmt.Errorf("logs_index %q is not a valid index or data stream name", cfg.LogsIndex))
	}
	if cfg.BulkAction != "create" && cfg.BulkAction != "index" {
		errs = append(errs, fmt.Errorf("bulk_action must be create or index, not %q", cfg.BulkAction))
	}
	if cfg.Password != "" && cfg.User == "" {
		errs = append(errs, errors.New("password is set but user is empty"))
	}
	return errors.Join(errs...)
}
