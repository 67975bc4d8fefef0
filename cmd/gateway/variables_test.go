package main

import (
	"bytes"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// configVars returns the configuration's variables, read from its struct tags, with the
// default of each as -h shows it.
func configVars(tb testing.TB) []configVar {
	tb.Helper()
	defaults := reflect.ValueOf(defaultConfig())
	var out []configVar
	for i, f := range reflect.VisibleFields(defaults.Type()) {
		tag := f.Tag.Get("envconfig")
		if tag == "" || f.Tag.Get("desc") == "" {
			tb.Errorf("config.%s: no envconfig or desc tag", f.Name)
			continue
		}
		out = append(out, configVar{field: f.Name, name: envPrefix + "_" + tag, index: i,
			shown: usageDefault(defaults.Field(i).Interface())})
	}
	return out
}

// configVar is one variable of the configuration.
type configVar struct {
	field string // the config field it sets
	name  string // GATEWAY_...
	index int    // the field's index in config
	shown string // its default as -h shows it
}

// usageLines runs -h and returns its lines, by the variable they start with.
func usageLines(tb testing.TB) map[string][]string {
	tb.Helper()
	var out bytes.Buffer
	if code := realMain([]string{"-h"}, &out, io.Discard); code != 0 {
		tb.Fatalf("-h: exit %d", code)
	}
	lines := make(map[string][]string)
	for _, l := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(l); len(f) > 0 && strings.HasPrefix(f[0], envPrefix+"_") {
			if _, dup := lines[f[0]]; dup {
				tb.Errorf("-h lists %s twice", f[0])
			}
			lines[f[0]] = f
		}
	}
	return lines
}

// TestUsageShowsEveryVariableWithItsDefault checks -h against the configuration's struct:
// every variable is listed, once, with its default and a description, and nothing else is;
// and each default, set as shown, gives the default configuration back.
func TestUsageShowsEveryVariableWithItsDefault(t *testing.T) {
	vars := configVars(t)
	lines := usageLines(t)
	if len(lines) != len(vars) {
		t.Errorf("-h lists %d variables, the configuration has %d", len(lines), len(vars))
	}
	for _, v := range vars {
		f, ok := lines[v.name]
		switch {
		case !ok:
			t.Errorf("-h does not list %s", v.name)
			continue
		case len(f) < 3:
			t.Errorf("-h: %s without a default and a description: %q", v.name, f)
			continue
		case f[1] != v.shown:
			t.Errorf("-h: %s default %q, want %q", v.name, f[1], v.shown)
		}
		if v.shown != noDefault {
			t.Setenv(v.name, v.shown)
		} else {
			t.Setenv(v.name, "") // restored when the test ends
			os.Unsetenv(v.name)
		}
	}
	var c config
	if err := envconfig.Process(envPrefix, &c); err != nil {
		t.Fatalf("the defaults -h shows, set: %v", err)
	}
	got, want := reflect.ValueOf(c), reflect.ValueOf(defaultConfig())
	for _, v := range vars {
		if g, w := got.Field(v.index).Interface(), want.Field(v.index).Interface(); !reflect.DeepEqual(g, w) {
			t.Errorf("%s=%q gives %#v, the default is %#v", v.name, v.shown, g, w)
		}
	}
}

// readmeDefault matches a row of README's tables of variables: the variables, then their
// default (one for all, or one each).
var readmeDefault = regexp.MustCompile("^\\| (`GATEWAY_[A-Z0-9_]+`(?:, `GATEWAY_[A-Z0-9_]+`)*) \\| ([^|]+) \\|")

// TestReadmeDocumentsEveryVariableWithItsDefault checks README's tables of variables against
// the configuration's struct: each variable is documented, with the default -h shows.
func TestReadmeDocumentsEveryVariableWithItsDefault(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := make(map[string]string)
	for _, l := range strings.Split(string(readme), "\n") {
		m := readmeDefault.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		names := strings.Split(strings.ReplaceAll(m[1], "`", ""), ", ")
		defaults := strings.Split(strings.ReplaceAll(strings.TrimSpace(m[2]), "`", ""), ", ")
		for i, n := range names {
			d := defaults[0]
			if len(defaults) == len(names) {
				d = defaults[i]
			}
			documented[n] = d
		}
	}
	for _, v := range configVars(t) {
		d, ok := documented[v.name]
		switch {
		case !ok:
			t.Errorf("README does not document %s", v.name)
		case d != v.shown:
			t.Errorf("README: %s default %q, -h shows %q", v.name, d, v.shown)
		}
		delete(documented, v.name)
	}
	for n := range documented {
		t.Errorf("README documents %s, which the configuration does not have", n)
	}
}

// programVariables are the variables that the program uses itself, rather than passing
// them on in the options of natsbus, gateway or auth.
var programVariables = map[string]bool{
	"HTTPAddr": true, "TLSCertFile": true, "TLSKeyFile": true, "H2C": true,
	"ShutdownTimeout": true, "LogLevel": true, "LogFormat": true,
}

// otherValue returns a setting of v's type, different from v, and the value it gives.
func otherValue(tb testing.TB, field string, v reflect.Value) string {
	switch v.Kind() {
	case reflect.String:
		if field == "AuthPublicKey" { // read at start: a file that exists
			path := tb.TempDir() + "/key.pem"
			if err := os.WriteFile(path, []byte("not a key, but not empty"), 0o600); err != nil {
				tb.Fatal(err)
			}
			return path
		}
		return v.String() + "x"
	case reflect.Bool:
		return strconv.FormatBool(!v.Bool())
	case reflect.Int, reflect.Int64:
		if v.Type() == reflect.TypeFor[time.Duration]() {
			return (time.Duration(v.Int()) + time.Second).String()
		}
		return strconv.FormatInt(v.Int()+1, 10)
	case reflect.Float64:
		return strconv.FormatFloat(v.Float()+1, 'g', -1, 64)
	case reflect.Slice:
		return "10.0.0.1,10.0.0.2"
	}
	tb.Fatalf("config.%s: no test value for a %s", field, v.Type())
	return ""
}

// TestEveryVariableIsRead sets each variable of the configuration's struct in turn to a
// value other than its default: that variable, and no other, must change, and unless the
// program uses it itself, so must the options it is passed on in.
func TestEveryVariableIsRead(t *testing.T) {
	def := defaultConfig()
	defOpts := configOptions(t, def)
	for _, v := range configVars(t) {
		t.Run(v.name, func(t *testing.T) {
			value := otherValue(t, v.field, reflect.ValueOf(def).Field(v.index))
			t.Setenv(v.name, value)
			c := defaultConfig()
			if err := envconfig.Process(envPrefix, &c); err != nil {
				t.Fatalf("%s=%q: %v", v.name, value, err)
			}
			got, want := reflect.ValueOf(c), reflect.ValueOf(def)
			for _, o := range configVars(t) {
				changed := !reflect.DeepEqual(got.Field(o.index).Interface(), want.Field(o.index).Interface())
				if changed != (o.index == v.index) {
					t.Errorf("%s=%q: %s changed %v, want %v", v.name, value, o.field, changed, o.index == v.index)
				}
			}
			reached := !reflect.DeepEqual(configOptions(t, c), defOpts)
			if reached == programVariables[v.field] {
				t.Errorf("%s=%q: options changed %v, want %v", v.name, value, reached, !programVariables[v.field])
			}
		})
	}
}

// configOptions returns the options the configuration is passed on in.
func configOptions(tb testing.TB, c config) []any {
	tb.Helper()
	a, err := c.authOptions(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return []any{c.busOptions(nil), c.gatewayOptions(nil), a}
}
