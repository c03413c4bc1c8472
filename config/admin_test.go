package config

import "testing"

func TestAdminLoopback_OnlyLoopbackBinds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		listen string
		want   bool
	}{
		{"127.0.0.1:9090", true},
		{"127.8.9.10:9090", true},
		{"[::1]:9090", true},
		{"localhost:9090", true},
		{"LOCALHOST:9090", true},
		{"[::ffff:127.0.0.1]:9090", true},
		{":9090", false},
		{"0.0.0.0:9090", false},
		{"[::]:9090", false},
		{"10.0.0.5:9090", false},
		{"admin.internal:9090", false},
		{"garbage", false},
	} {
		c := &Config{AdminListen: tc.listen}
		if got := c.AdminLoopback(); got != tc.want {
			t.Errorf("AdminLoopback(%q) = %v, want %v", tc.listen, got, tc.want)
		}
		if got, want := c.AdminTokenRequired(), !tc.want; got != want {
			t.Errorf("AdminTokenRequired(%q, no file) = %v, want %v", tc.listen, got, want)
		}
		c.AdminTokenFile = "admin.token"
		if !c.AdminTokenRequired() {
			t.Errorf("AdminTokenRequired(%q, with a file) = false: a configured token is always enforced", tc.listen)
		}
	}
}
