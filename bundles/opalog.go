package bundles

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"

	"github.com/open-policy-agent/opa/v1/logging"
)

// opaLogger adapts a slog.Logger to OPA's logging.Logger, so that OPA's
// downloader, REST client and plugins log where the rest of regoguard does
// rather than to logrus on standard error.
type opaLogger struct {
	l      *slog.Logger
	fields map[string]any
	level  logging.Level
}

func newOPALogger(l *slog.Logger) *opaLogger {
	lvl := logging.Info
	if l.Enabled(context.Background(), slog.LevelDebug) {
		lvl = logging.Debug
	}
	return &opaLogger{l: l, level: lvl}
}

func (o *opaLogger) log(level slog.Level, format string, a []any) {
	ctx := context.Background()
	if !o.l.Enabled(ctx, level) {
		return
	}
	attrs := make([]any, 0, 2*len(o.fields))
	for _, k := range slices.Sorted(maps.Keys(o.fields)) {
		attrs = append(attrs, k, o.fields[k])
	}
	o.l.Log(ctx, level, fmt.Sprintf(format, a...), attrs...)
}

func (o *opaLogger) Debug(f string, a ...any) { o.log(slog.LevelDebug, f, a) }
func (o *opaLogger) Info(f string, a ...any)  { o.log(slog.LevelInfo, f, a) }
func (o *opaLogger) Warn(f string, a ...any)  { o.log(slog.LevelWarn, f, a) }
func (o *opaLogger) Error(f string, a ...any) { o.log(slog.LevelError, f, a) }

func (o *opaLogger) WithFields(fields map[string]any) logging.Logger {
	merged := maps.Clone(o.fields)
	if merged == nil {
		merged = map[string]any{}
	}
	maps.Copy(merged, fields)
	return &opaLogger{l: o.l, fields: merged, level: o.level}
}

func (o *opaLogger) GetLevel() logging.Level  { return o.level }
func (o *opaLogger) SetLevel(l logging.Level) { o.level = l }
