package charttest

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/portcullis-sso/portcullis/config"
)

var update = flag.Bool("update", false, "rewrite the golden files in ../portcullis/testdata")

// fixedSecrets are inline secret values for renders that use the Secret the
// chart makes. They are fixed text, not keys, so golden files stay stable;
// TestCheckConfig uses real ones.
var fixedSecrets = map[string]any{
	"saml": map[string]any{
		"key":  "-----BEGIN PRIVATE KEY-----\ntest-key\n-----END PRIVATE KEY-----\n",
		"cert": "-----BEGIN CERTIFICATE-----\ntest-cert\n-----END CERTIFICATE-----\n",
	},
	"session": map[string]any{"keys": "dGVzdC1obWFj dGVzdC1hZXM=\n"},
}

// minimalValues is the least a standalone install needs.
func minimalValues() map[string]any {
	return merge(map[string]any{
		"publicURL": "https://app.example.com",
		"upstream":  "http://app.apps.svc.cluster.local:3000",
		"saml":      map[string]any{"idpMetadataURL": "https://idp.example.com/metadata"},
	}, fixedSecrets)
}

func TestLint_CIValues(t *testing.T) {
	for _, f := range ciValuesFiles(t) {
		t.Run(caseName(f), func(t *testing.T) {
			errs, others := lintChart(t, readValues(t, f))
			for _, e := range errs {
				t.Errorf("helm lint --strict -f %s: %s", filepath.Base(f), e)
			}
			for _, m := range others {
				t.Logf("helm lint: %s", m)
			}
		})
	}
}

// renderCase says what one values file must render, beyond the checks every
// render gets (checkRelease).
type renderCase struct {
	kinds map[string]int
	check func(t *testing.T, rel *release, vals map[string]any)
}

var ciCases = map[string]renderCase{
	"forwardauth": {
		kinds: map[string]int{"ServiceAccount": 1, "ConfigMap": 1, "Service": 1, "Deployment": 1, "PodDisruptionBudget": 1},
		check: func(t *testing.T, rel *release, vals map[string]any) {
			if got := containerNames(rel.pod); !slices.Equal(got, []string{"portcullis"}) {
				t.Errorf("containers %v, want portcullis alone", got)
			}
			c := rel.config
			if !c.ForwardAuth.Enabled || c.Upstream != "" || c.UpstreamURL != nil {
				t.Errorf("config forwardAuth %v upstream %q: want forward-auth with no upstream", c.ForwardAuth.Enabled, c.Upstream)
			}
			if c.Session.CookieDomain != ".example.com" || !slices.Equal(c.AllowedRedirectHosts, []string{"app.example.com", "app2.example.com"}) {
				t.Errorf("cookieDomain %q allowedRedirectHosts %q", c.Session.CookieDomain, c.AllowedRedirectHosts)
			}
		},
	},
	"standalone-sqlite": {
		kinds: map[string]int{"ServiceAccount": 1, "ConfigMap": 1, "Service": 1, "PersistentVolumeClaim": 1, "Deployment": 1, "PodDisruptionBudget": 1},
		check: func(t *testing.T, rel *release, vals map[string]any) {
			if got := containerNames(rel.pod); !slices.Equal(got, []string{"portcullis"}) {
				t.Errorf("containers %v, want portcullis alone", got)
			}
			if rel.deploy.Spec.Strategy.Type != "Recreate" {
				t.Errorf("strategy %q, want Recreate: two pods must never share the SQLite file", rel.deploy.Spec.Strategy.Type)
			}
			if got := rel.config.Upstream; got != vals["upstream"] {
				t.Errorf("config upstream %q, want %q", got, vals["upstream"])
			}
			if !rel.config.SCIM.Enabled || rel.config.Store.Driver != "sqlite" || rel.config.Store.DSN != dataDir+"/portcullis.db" {
				t.Errorf("config scim %+v store %+v, want SCIM on the SQLite file in %s", rel.config.SCIM, rel.config.Store, dataDir)
			}
			pvc := rel.pvcs[0]
			if got := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; got.String() != "2Gi" {
				t.Errorf("PVC size %s, want 2Gi", got.String())
			}
			if v := volume(rel.pod, "data"); v == nil || v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != pvc.Name {
				t.Errorf("data volume %+v, want the PVC %s", v, pvc.Name)
			}
			if len(rel.secrets) != 0 {
				t.Errorf("rendered %d Secrets; every secret comes from an existingSecret", len(rel.secrets))
			}
			wantRoutes := []config.Route{{Path: "/healthz", Public: true}, {Path: "/admin/", AllowGroups: []string{"admins"}}}
			if diff := cmp.Diff(wantRoutes, rel.config.Routes); diff != "" {
				t.Errorf("config routes (-want +got):\n%s", diff)
			}
		},
	},
	"sidecar": {
		kinds: map[string]int{"ServiceAccount": 1, "Secret": 1, "ConfigMap": 1, "Service": 1, "Deployment": 1, "PodDisruptionBudget": 1, "NetworkPolicy": 1},
		check: func(t *testing.T, rel *release, vals map[string]any) {
			if got := containerNames(rel.pod); !slices.Equal(got, []string{"hello", "portcullis"}) {
				t.Errorf("containers %v, want the app then portcullis", got)
			}
			if got := rel.config.Upstream; got != "http://127.0.0.1:3000" {
				t.Errorf("config upstream %q, want the app on loopback", got)
			}
			if *rel.deploy.Spec.Replicas != 2 {
				t.Errorf("replicas %d, want 2", *rel.deploy.Spec.Replicas)
			}
			if rel.config.SAML.IDPMetadataFile != configDir+"/idp-metadata.xml" {
				t.Errorf("config idpMetadataFile %q, want the ConfigMap's copy", rel.config.SAML.IDPMetadataFile)
			}
			if len(rel.config.Headers) != 0 {
				t.Errorf("config headers %v, want none (headers: {})", rel.config.Headers)
			}
			if got := rel.config.SAML.Attributes; got != (config.Attributes{User: "uid", Email: "mail", Groups: "memberOf"}) {
				t.Errorf("config attributes %+v: the empty name should be left out", got)
			}
			if v := volume(rel.pod, "cache"); v == nil || v.EmptyDir == nil {
				t.Errorf("extraVolumes cache missing: %+v", rel.pod.Volumes)
			}
			keys := keysOf(rel.secrets[0].Data)
			if want := []string{"session.keys", "sp.crt", "sp.key"}; !slices.Equal(keys, want) {
				t.Errorf("Secret keys %v, want %v", keys, want)
			}
			for _, c := range rel.services[0].Spec.Ports {
				if c.TargetPort != intstr.FromString("http") {
					t.Errorf("Service targets %v; in sidecar mode it must reach Portcullis, never the app", c.TargetPort)
				}
			}
		},
	},
	"postgres-ha": {
		kinds: map[string]int{"ServiceAccount": 1, "Secret": 1, "ConfigMap": 1, "Service": 2, "Deployment": 1,
			"PodDisruptionBudget": 1, "Ingress": 1, "ServiceMonitor": 1, "NetworkPolicy": 1},
		check: func(t *testing.T, rel *release, vals map[string]any) {
			if *rel.deploy.Spec.Replicas != 3 {
				t.Errorf("replicas %d, want 3", *rel.deploy.Spec.Replicas)
			}
			if rel.deploy.Spec.Strategy.Type == "Recreate" {
				t.Errorf("strategy Recreate; with PostgreSQL pods should roll")
			}
			st := rel.config.Store
			if st.Driver != "postgres" || st.DSNFile != configDir+"/store.dsn" || st.DSN != "" {
				t.Errorf("config store %+v, want postgres with the DSN in %s/store.dsn", st, configDir)
			}
			if got := string(rel.secrets[0].Data["dsn"]); !strings.HasPrefix(got, "postgres://") {
				t.Errorf("Secret dsn %q, want the DSN from store.dsn", got)
			}
			if !strings.Contains(rel.portcullis.Image, "@sha256:") {
				t.Errorf("image %s, want pinned by digest", rel.portcullis.Image)
			}
			if p := rel.pdbs[0].Spec.MinAvailable; p == nil || p.IntValue() != 2 || rel.pdbs[0].Spec.MaxUnavailable != nil {
				t.Errorf("PDB %+v, want minAvailable 2 alone", rel.pdbs[0].Spec)
			}
			if got := rel.ingresses[0].Spec.Rules[0].Host; got != "portal.example.com" {
				t.Errorf("Ingress host %q, want publicURL's host", got)
			}
			if got := *rel.pod.TerminationGracePeriodSeconds; got != 45 {
				t.Errorf("terminationGracePeriodSeconds %d, want drainTimeout 40s + 5", got)
			}
			if len(rel.pvcs) != 0 || volume(rel.pod, "data") != nil {
				t.Errorf("a PostgreSQL install needs no data volume")
			}
			if rel.config.Session.CookieName != "__Host-portal" || rel.config.SCIM.GroupsSource != "both" {
				t.Errorf("config session %+v scim %+v: values not carried over", rel.config.Session, rel.config.SCIM)
			}
			np := rel.netpols[0]
			if len(np.Spec.Ingress) != 2 || len(np.Spec.Ingress[1].From) != 1 {
				t.Errorf("NetworkPolicy ingress %+v, want http from ingress-nginx and admin from monitoring", np.Spec.Ingress)
			}
		},
	},
	"minimal": {
		kinds: map[string]int{"ServiceAccount": 1, "Secret": 1, "ConfigMap": 1, "Service": 1, "Deployment": 1, "PodDisruptionBudget": 1},
		check: func(t *testing.T, rel *release, vals map[string]any) {
			want := config.DefaultHeaders()
			if diff := cmp.Diff(want, rel.config.Headers); diff != "" {
				t.Errorf("headers: null should leave Portcullis's defaults (-want +got):\n%s", diff)
			}
			if rel.config.SCIM.Enabled || volume(rel.pod, "data") != nil {
				t.Errorf("SCIM is off by default and needs no data volume")
			}
			if p := rel.pdbs[0].Spec.MaxUnavailable; p == nil || p.IntValue() != 1 {
				t.Errorf("PDB %+v, want maxUnavailable 1", rel.pdbs[0].Spec)
			}
			if got := *rel.pod.TerminationGracePeriodSeconds; got != 30 {
				t.Errorf("terminationGracePeriodSeconds %d, want 30 (drainTimeout 25s + 5)", got)
			}
			if rel.portcullis.Image != "ghcr.io/portcullis-sso/portcullis:0.1.0" {
				t.Errorf("image %s, want the chart's appVersion", rel.portcullis.Image)
			}
			// The config matches Portcullis's own defaults wherever the
			// values do not say otherwise.
			c := rel.config
			if c.SAML.NameIDFormat != config.DefaultNameIDFormat || c.SAML.ClockSkew != config.DefaultClockSkew ||
				c.Session.Lifetime != config.DefaultSessionLifetime || c.Server.DrainTimeout != config.DefaultDrainTimeout ||
				c.Server.MaxHeaderBytes != config.DefaultMaxHeaderBytes || c.Server.ACSBodyLimit != config.DefaultACSBodyLimit {
				t.Errorf("chart defaults differ from Portcullis's: saml %+v session %+v server %+v", c.SAML, c.Session, c.Server)
			}
		},
	},
}

func TestRender_CIValues(t *testing.T) {
	files := ciValuesFiles(t)
	seen := map[string]bool{}
	for _, f := range files {
		name := caseName(f)
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			tc, ok := ciCases[name]
			if !ok {
				t.Fatalf("no entry for %s in ciCases: add what it must render", filepath.Base(f))
			}
			runRenderCase(t, name, readValues(t, f), tc)
		})
	}
	t.Run("minimal", func(t *testing.T) {
		runRenderCase(t, "minimal", minimalValues(), ciCases["minimal"])
	})
	for name := range ciCases {
		if !seen[name] && name != "minimal" {
			t.Errorf("ciCases has %s, but there is no ci/%s-values.yaml", name, name)
		}
	}
}

func runRenderCase(t *testing.T, name string, vals map[string]any, tc renderCase) {
	t.Helper()
	manifest := mustRender(t, vals)
	r := decodeManifest(t, manifest)
	if diff := cmp.Diff(tc.kinds, r.kinds()); diff != "" {
		t.Errorf("kinds rendered (-want +got):\n%s", diff)
	}
	rel := checkRelease(t, r, existingSecrets(vals))
	if tc.check != nil {
		tc.check(t, rel, vals)
	}
	golden(t, name, manifest)
}

// golden compares got with ../portcullis/testdata/<name>.golden, or writes
// it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join(chartDir, "testdata", name+".golden")
	if *update {
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("read golden file (run go test ./charts/... -update to write it): %v", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs (-want +got; rerun with -update if the change is intended):\n%s", p, diff)
	}
}

func TestRender_SQLiteWithReplicasFails(t *testing.T) {
	for _, tc := range []struct {
		name string
		vals map[string]any
	}{
		{"standalone", merge(readValues(t, filepath.Join(chartDir, "ci", "standalone-sqlite-values.yaml")), map[string]any{"replicaCount": 2})},
		{"sidecar", merge(readValues(t, filepath.Join(chartDir, "ci", "sidecar-values.yaml")), map[string]any{
			"scim": map[string]any{"enabled": true, "tokens": "okta 0123456789abcdef0123456789abcdef"}})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := render(t, loadChart(t), tc.vals)
			if err == nil {
				t.Fatal("rendered several replicas on one SQLite file; want a failure that says to use postgres")
			}
			t.Logf("%v", err)
			for _, want := range []string{"replicaCount is 2", "use store.driver postgres"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
	t.Run("without SCIM there is no store", func(t *testing.T) {
		vals := merge(minimalValues(), map[string]any{"replicaCount": 2, "store": map[string]any{"driver": "sqlite"}})
		r := decodeManifest(t, mustRender(t, vals))
		checkRelease(t, r, nil)
	})
}

func TestRender_TemplateChecks(t *testing.T) {
	noSAMLKey := minimalValues()
	noSAMLKey["saml"] = map[string]any{"idpMetadataURL": "https://idp.example.com/metadata"}
	noSessionKeys := minimalValues()
	delete(noSessionKeys, "session")
	for _, tc := range []struct {
		name string
		vals map[string]any
		want string
	}{
		{"no SP key pair", noSAMLKey, "the SP key pair is missing: set saml.existingSecret"},
		{"no session keys", noSessionKeys, "the session keys are missing"},
		{"existing and inline", merge(minimalValues(), map[string]any{"saml": map[string]any{"existingSecret": "sp"}}),
			"saml.existingSecret is set, so leave saml.key and saml.cert empty"},
		{"no SCIM tokens", merge(minimalValues(), map[string]any{"scim": map[string]any{"enabled": true}}),
			"scim.enabled needs tokens"},
		{"postgres without DSN", merge(minimalValues(), map[string]any{
			"scim":  map[string]any{"enabled": true, "existingSecret": "scim"},
			"store": map[string]any{"driver": "postgres"}}),
			"store.driver postgres needs a DSN"},
		{"two metadata sources", merge(minimalValues(), map[string]any{"saml": map[string]any{"idpMetadata": "<md/>"}}),
			"set exactly one of saml.idpMetadataURL, saml.idpMetadata (the XML) and saml.idpMetadataFile; 2 are set"},
		{"SQLite file off the volume", merge(minimalValues(), map[string]any{
			"scim":  map[string]any{"enabled": true, "existingSecret": "scim"},
			"store": map[string]any{"dsn": "/data/portcullis.db"}}),
			"store.dsn \"/data/portcullis.db\": with the sqlite driver it must be a file under /var/lib/portcullis/"},
		{"sidecar without app image", merge(minimalValues(), map[string]any{"mode": "sidecar"}),
			"app.image.repository is required in sidecar mode"},
		{"sidecar app on the proxy port", merge(minimalValues(), map[string]any{"mode": "sidecar",
			"app": map[string]any{"port": 8080, "image": map[string]any{"repository": "example/app"}}}),
			"app.port 8080 is also a Portcullis port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := render(t, loadChart(t), tc.vals)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("render error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

func TestSchema_RejectsBadValues(t *testing.T) {
	noPublicURL := minimalValues()
	delete(noPublicURL, "publicURL")
	noUpstream := minimalValues()
	delete(noUpstream, "upstream")
	for _, tc := range []struct {
		name string
		vals map[string]any
		want []string // each must appear in the error
	}{
		{"store.driver mysql", merge(minimalValues(), map[string]any{"store": map[string]any{"driver": "mysql"}}),
			[]string{"/store/driver", "'sqlite'", "'postgres'"}},
		{"replicaCount two", merge(minimalValues(), map[string]any{"replicaCount": "two"}),
			[]string{"/replicaCount", "got string, want integer"}},
		{"missing publicURL", noPublicURL, []string{"missing property 'publicURL'"}},
		{"missing upstream in standalone mode", noUpstream, []string{"missing property 'upstream'"}},
		{"publicURL with a path", merge(minimalValues(), map[string]any{"publicURL": "https://app.example.com/app"}),
			[]string{"/publicURL", "does not match pattern"}},
		{"mode daemonset", merge(minimalValues(), map[string]any{"mode": "daemonset"}),
			[]string{"/mode", "'standalone'", "'sidecar'"}},
		{"nameIDFormat URN", merge(minimalValues(), map[string]any{"saml": map[string]any{"nameIDFormat": "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"}}),
			[]string{"/saml/nameIDFormat", "'emailAddress'"}},
		{"groupsSource ldap", merge(minimalValues(), map[string]any{"scim": map[string]any{"groupsSource": "ldap"}}),
			[]string{"/scim/groupsSource", "'scim'", "'saml'", "'both'"}},
		{"duration in words", merge(minimalValues(), map[string]any{"session": map[string]any{"lifetime": "8 hours"}}),
			[]string{"/session/lifetime", "does not match pattern"}},
		{"misspelt key", merge(minimalValues(), map[string]any{"saml": map[string]any{"idpMetadataUrl": "https://idp.example.com/md"}}),
			[]string{"/saml", "additional properties 'idpMetadataUrl' not allowed"}},
		{"header to an unknown field", merge(minimalValues(), map[string]any{"headers": map[string]any{"X-User": "login"}}),
			[]string{"/headers/X-User", "'user'"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := render(t, loadChart(t), tc.vals)
			if err == nil {
				t.Fatal("rendered; want values.schema.json to reject the values")
			}
			t.Logf("%v", err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
		})
	}
}

func containerNames(pod *corev1.PodSpec) []string {
	var n []string
	for _, c := range pod.Containers {
		n = append(n, c.Name)
	}
	return n
}

func volume(pod *corev1.PodSpec, name string) *corev1.Volume {
	for i := range pod.Volumes {
		if pod.Volumes[i].Name == name {
			return &pod.Volumes[i]
		}
	}
	return nil
}
