package main

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// Configuration comes from three layers: flags win over environment
// variables, which win over the YAML file named by --config. Every flag
// --some-name is also REGOGUARD_SOME_NAME and the file key some-name; a few
// flags also read the environment names of fastapi-opa deployments
// (APP_URI, OIDC_CLIENT_ID, ...), declared with envAlias.

const envPrefix = "REGOGUARD_"

// configError is a bad configuration: the command exits with status 2.
type configError struct{ err error }

func (e configError) Error() string { return e.err.Error() }
func (e configError) Unwrap() error { return e.err }

func configErrorf(format string, args ...any) error {
	return configError{fmt.Errorf(format, args...)}
}

// envAlias lets a flag be set by other environment variable names too,
// after its REGOGUARD_ name.
func envAlias(fs *pflag.FlagSet, flag string, names ...string) {
	if err := fs.SetAnnotation(flag, "env", names); err != nil {
		panic(err) // a programming error: the flag does not exist
	}
}

func envName(flag string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// applyLayers fills every flag the command line left unset from the
// environment, then from the config file. Unknown REGOGUARD_ variables,
// unknown file keys and bad values are errors that name the culprit.
func applyLayers(cmd *cobra.Command, environ []string) error {
	fs := cmd.Flags()
	known := map[string]bool{envName("config"): true}
	fs.VisitAll(func(f *pflag.Flag) {
		known[envName(f.Name)] = true
		for _, alias := range f.Annotations["env"] {
			known[alias] = true
		}
	})
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, envPrefix) && !known[name] {
			hint := didYouMean(name, slices.Collect(maps.Keys(known)), func(s string) string { return s })
			return configErrorf("unknown environment variable %s for %q%s", name, cmd.CommandPath(), hint)
		}
	}
	env := envMap(environ)
	file, path, err := readConfigFile(fs, env)
	if err != nil {
		return err
	}
	for key := range file {
		if f := fs.Lookup(key); f == nil || key == "config" || key == "help" {
			keys := slices.DeleteFunc(flagNames(fs), func(k string) bool { return k == "config" || k == "help" })
			hint := didYouMean(key, keys, func(s string) string { return strconv.Quote(s) })
			return configErrorf("config file %s: unknown key %q for %q%s", path, key, cmd.CommandPath(), hint)
		}
	}
	var firstErr error
	fs.VisitAll(func(f *pflag.Flag) {
		if firstErr != nil || f.Changed || f.Name == "config" || f.Name == "help" {
			return
		}
		if err := setFromEnv(f, env); err != nil {
			firstErr = err
			return
		}
		if f.Changed {
			return
		}
		if v, ok := file[f.Name]; ok {
			if err := setFromFile(f, v); err != nil {
				firstErr = configErrorf("config file %s: key %q: %w", path, f.Name, err)
			}
		}
	})
	return firstErr
}

func envMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

func setFromEnv(f *pflag.Flag, env map[string]string) error {
	names := append([]string{envName(f.Name)}, f.Annotations["env"]...)
	for _, name := range names {
		v, ok := env[name]
		if !ok || v == "" {
			continue
		}
		values := []string{v}
		if isList(f) {
			values = strings.Split(v, ",")
		}
		for _, item := range values {
			if err := f.Value.Set(strings.TrimSpace(item)); err != nil {
				return configErrorf("environment variable %s (--%s): %w", name, f.Name, err)
			}
		}
		f.Changed = true
		return nil
	}
	return nil
}

func setFromFile(f *pflag.Flag, v any) error {
	items, ok := v.([]any)
	if !ok {
		items = []any{v}
	} else if !isList(f) {
		return fmt.Errorf("want a single value, got a list")
	}
	for _, item := range items {
		switch item.(type) {
		case map[string]any:
			return fmt.Errorf("want a value of type %s, got a mapping", f.Value.Type())
		case []any:
			return fmt.Errorf("want a value of type %s, got a list of lists", f.Value.Type())
		case nil:
			return fmt.Errorf("want a value of type %s, got nothing", f.Value.Type())
		}
		if err := f.Value.Set(fmt.Sprint(item)); err != nil {
			return fmt.Errorf("want a value of type %s: %w", f.Value.Type(), err)
		}
	}
	f.Changed = true
	return nil
}

func isList(f *pflag.Flag) bool {
	return strings.HasSuffix(f.Value.Type(), "Slice") || strings.HasSuffix(f.Value.Type(), "Array")
}

// readConfigFile reads the YAML file named by --config or REGOGUARD_CONFIG:
// a mapping of flag names to values (lists for repeatable flags).
func readConfigFile(fs *pflag.FlagSet, env map[string]string) (map[string]any, string, error) {
	path := ""
	if f := fs.Lookup("config"); f != nil {
		path = f.Value.String()
	}
	if path == "" {
		path = env[envName("config")]
	}
	if path == "" {
		return nil, "", nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, path, configErrorf("config file: %w", err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, path, configErrorf("config file %s: %w", path, err)
	}
	return doc, path, nil
}

// exitCode maps an error to the process exit status: 2 for bad usage or
// configuration, 1 for anything else.
func exitCode(err error) int {
	var ce configError
	if errors.As(err, &ce) {
		return 2
	}
	return 1
}

// oneOf checks that a flag's value is one of the allowed words.
func oneOf(flag, value string, allowed ...string) error {
	if !slices.Contains(allowed, value) {
		return configErrorf("--%s: %q is not one of %s", flag, value, strings.Join(allowed, ", "))
	}
	return nil
}
