package main

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/natsse/natsse/auth"
	"github.com/natsse/natsse/gateway"
	"github.com/natsse/natsse/natsbus"
)

// notFromEnvironment are the options the program sets itself, or leaves at their default.
var notFromEnvironment = map[string]bool{
	"Bus": true, "Logger": true, "StartTimeout": true, "MaxReplays": true,
	"MaxHeaderBytes": true, "PublishTimeout": true, "ClientAuth": true, "Auth": true, "HTTPClient": true,
}

// TestEveryOptionHasItsVariable checks that an error about any option of natsbus or
// gateway can name the variable that sets it, and that each of those variables exists.
func TestEveryOptionHasItsVariable(t *testing.T) {
	vars := make(map[string]bool)
	for _, f := range reflect.VisibleFields(reflect.TypeOf(config{})) {
		vars[f.Tag.Get("envconfig")] = true
	}
	for _, opts := range []any{natsbus.Options{}, gateway.Options{}, auth.Options{}} {
		for _, f := range reflect.VisibleFields(reflect.TypeOf(opts)) {
			name, ok := optionVars[f.Name]
			switch {
			case notFromEnvironment[f.Name]:
			case !ok:
				t.Errorf("%T.%s: no variable in optionVars", opts, f.Name)
			case !vars[strings.Split(name, "/")[0]]: // "CLUSTER_NAME/ADDR/ROUTES" names three
				t.Errorf("%T.%s: variable %s_%s does not exist", opts, f.Name, envPrefix, name)
			}
		}
	}
}

// TestDefaultsShown checks that -h shows each default as one would set it.
func TestDefaultsShown(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want string
	}{
		{natsbus.DefaultOptions().MaxAge, "24h"}, {natsbus.DefaultOptions().DuplicateWindow, "2m"},
		{gateway.DefaultOptions().KeepAlive, "15s"}, {gateway.DefaultOptions().WriteTimeout, "10s"},
		{[]string(nil), ""}, {[]string{"a", "b"}, "a,b"}, {512, "512"},
	} {
		if got := showDefault(tc.v); got != tc.want {
			t.Errorf("showDefault(%v) = %q, want %q", tc.v, got, tc.want)
		}
	}
	if fsyncSetting(-1) != "always" || fsyncSetting(natsbus.DefaultOptions().SyncInterval) != "2m" {
		t.Errorf("fsync settings: %q, %q", fsyncSetting(-1), fsyncSetting(natsbus.DefaultOptions().SyncInterval))
	}
}

func TestSecurityConfigErrors(t *testing.T) {
	secret := "0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		name   string
		change func(*config)
		want   string
	}{
		{"short secret", func(c *config) { c.AuthSecret = "short" }, "GATEWAY_AUTH_SECRET"},
		{"certificate without key", func(c *config) { c.TLSCertFile = "cert.pem" }, "GATEWAY_TLS_CERT_FILE"},
		{"h2c over TLS", func(c *config) { c.TLSCertFile, c.TLSKeyFile, c.H2C = "cert.pem", "key.pem", true }, "GATEWAY_H2C"},
		{"two keys", func(c *config) { c.AuthSecret, c.AuthJWKSURL = secret, "http://127.0.0.1:1/jwks" }, "GATEWAY_AUTH_SECRET"},
		{"no key file", func(c *config) { c.AuthPublicKey = "/nonexistent/key.pem" }, "GATEWAY_AUTH_PUBLIC_KEY_FILE"},
		{"empty key file", func(c *config) { c.AuthPublicKey = os.DevNull }, "GATEWAY_AUTH_PUBLIC_KEY_FILE"},
		{"bad cookie name", func(c *config) { c.AuthSecret, c.AuthCookie = secret, "a b" }, "GATEWAY_AUTH_COOKIE"},
		{"bad anonymous filter", func(c *config) { c.AuthSecret, c.AuthAnonymous = secret, []string{"a..b"} }, "GATEWAY_AUTH_ANONYMOUS"},
		{"cluster without route credentials", func(c *config) {
			c.AuthSecret, c.ServerName = secret, "n1"
			c.ClusterName, c.ClusterAddr, c.ClusterRoutes = "c", "127.0.0.1:6222", []string{"nats://127.0.0.1:6222"}
		}, "GATEWAY_CLUSTER_USER"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig(t)
			tc.change(&c)
			err := c.validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), secret) {
				t.Fatalf("error %v: want one naming %s, without the secret", err, tc.want)
			}
		})
	}
}

// TestNATSModes checks that the ways to run NATS exclude each other, that a leaf node
// needs its JetStream domain, and that credentials are set one way and for a deployment:
// each refusal names the variables at fault; what README documents is accepted.
func TestNATSModes(t *testing.T) {
	cluster := func(c *config) {
		c.ServerName, c.ClusterName, c.ClusterAddr = "n1", "c", "127.0.0.1:6222"
		c.ClusterRoutes = []string{"nats://127.0.0.1:6222"}
	}
	url := func(c *config) { c.NATSURL = []string{"nats://127.0.0.1:4222"} }
	leaf := func(c *config) { c.LeafRemotes, c.JSDomain = []string{"nats://127.0.0.1:7422"}, "hub" }
	for _, tc := range []struct {
		name    string
		changes []func(*config)
		want    []string // what the error names; none: accepted
	}{
		{"embedded cluster", []func(*config){cluster}, nil},
		{"external", []func(*config){url}, nil},
		{"leaf node", []func(*config){leaf}, nil},
		{"external with creds", []func(*config){url, func(c *config) { c.NATSCreds = "user.creds" }}, nil},
		{"external with user", []func(*config){url, func(c *config) { c.NATSUser, c.NATSPassword = "u", "p" }}, nil},
		{"external with token", []func(*config){url, func(c *config) { c.NATSToken = "t" }}, nil},
		{"leaf with creds", []func(*config){leaf, func(c *config) { c.NATSCreds = "user.creds" }}, nil},

		{"external and cluster", []func(*config){url, cluster}, []string{"GATEWAY_NATS_URL", "cluster"}},
		{"external and leaf", []func(*config){url, leaf}, []string{"GATEWAY_NATS_URL", "leaf"}},
		{"leaf and cluster", []func(*config){leaf, cluster}, []string{"GATEWAY_LEAF_REMOTES", "cluster"}},
		{"leaf without domain", []func(*config){leaf, func(c *config) { c.JSDomain = "" }}, []string{"GATEWAY_JS_DOMAIN", "required"}},
		{"creds and token", []func(*config){url, func(c *config) { c.NATSCreds, c.NATSToken = "user.creds", "t" }}, []string{"GATEWAY_NATS_CREDS", "one way"}},
		{"user and token", []func(*config){url, func(c *config) { c.NATSUser, c.NATSPassword, c.NATSToken = "u", "p", "t" }}, []string{"GATEWAY_NATS_CREDS", "one way"}},
		{"user without password", []func(*config){url, func(c *config) { c.NATSUser = "u" }}, []string{"GATEWAY_NATS_CREDS", "password"}},
		{"leaf with token", []func(*config){leaf, func(c *config) { c.NATSToken = "t" }}, []string{"GATEWAY_NATS_CREDS", ".creds file only"}},
		{"token without deployment", []func(*config){func(c *config) { c.NATSToken = "t" }}, []string{"GATEWAY_NATS_CREDS", "existing deployment"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig(t)
			for _, change := range tc.changes {
				change(&c)
			}
			err := c.validate()
			if tc.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted, want an error naming %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
}
