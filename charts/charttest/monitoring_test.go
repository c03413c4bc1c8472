package charttest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/portcullis-sso/portcullis/internal/metrics"
)

// prometheusRule is the part of monitoring.coreos.com/v1 PrometheusRule the
// chart renders. Decoding rejects any field not listed here.
type prometheusRule struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Alert       string            `json:"alert"`
				Expr        string            `json:"expr"`
				For         string            `json:"for,omitempty"`
				Labels      map[string]string `json:"labels,omitempty"`
				Annotations map[string]string `json:"annotations,omitempty"`
			} `json:"rules"`
		} `json:"groups"`
	} `json:"spec"`
}

// DeepCopyObject makes prometheusRule a runtime.Object; the tests never copy it.
func (p *prometheusRule) DeepCopyObject() runtime.Object { c := *p; return &c }

// alerts maps each alert name to its rule.
func (p *prometheusRule) alerts() map[string]struct {
	expr, forDur        string
	labels, annotations map[string]string
} {
	out := map[string]struct {
		expr, forDur        string
		labels, annotations map[string]string
	}{}
	for _, g := range p.Spec.Groups {
		for _, r := range g.Rules {
			out[r.Alert] = struct {
				expr, forDur        string
				labels, annotations map[string]string
			}{r.Expr, r.For, r.Labels, r.Annotations}
		}
	}
	return out
}

func decodePrometheusRule(doc []byte) (runtime.Object, error) {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	pr := &prometheusRule{}
	if err := dec.Decode(pr); err != nil {
		return nil, fmt.Errorf("decode PrometheusRule: %w", err)
	}
	if pr.Name == "" || len(pr.Spec.Groups) == 0 {
		return nil, fmt.Errorf("PrometheusRule needs metadata.name and spec.groups")
	}
	for _, g := range pr.Spec.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			return nil, fmt.Errorf("PrometheusRule group needs a name and rules: %+v", g)
		}
		for _, r := range g.Rules {
			if r.Alert == "" || strings.TrimSpace(r.Expr) == "" {
				return nil, fmt.Errorf("PrometheusRule rule needs alert and expr: %+v", r)
			}
			if err := balanced(r.Expr); err != nil {
				return nil, fmt.Errorf("alert %s: expr %q: %w", r.Alert, r.Expr, err)
			}
			if r.For != "" {
				if _, err := time.ParseDuration(r.For); err != nil {
					return nil, fmt.Errorf("alert %s: for %q: %w", r.Alert, r.For, err)
				}
			}
		}
	}
	return pr, nil
}

// balanced is a cheap syntax check of a PromQL expression: brackets pair
// up and quotes close, so a template slip (a lost brace) fails the test.
func balanced(expr string) error {
	var stack []rune
	inQuote := false
	for _, c := range expr {
		if inQuote {
			if c == '"' {
				inQuote = false
			}
			continue
		}
		switch c {
		case '"':
			inQuote = true
		case '(', '{', '[':
			stack = append(stack, c)
		case ')', '}', ']':
			open := map[rune]rune{')': '(', '}': '{', ']': '['}[c]
			if len(stack) == 0 || stack[len(stack)-1] != open {
				return fmt.Errorf("unbalanced %q", c)
			}
			stack = stack[:len(stack)-1]
		}
	}
	if inQuote || len(stack) > 0 {
		return fmt.Errorf("unclosed %q", stack)
	}
	return nil
}

// exportedSeries is every series name Portcullis exports, histograms with
// their _bucket, _sum and _count, read from a registry as cmd wires it.
func exportedSeries(t *testing.T) map[string]bool {
	t.Helper()
	m := metrics.New()
	m.WatchMetadata(func(fn func(string, time.Time)) { fn("default", time.Now()) })
	m.WatchDirectory(fakeView{})
	m.WatchFreshness(time.Now)
	// Vectors without children are not gathered: give each one.
	m.PropagationLag(0)
	m.SCIMRequest("Users", "create", 201)
	m.DirectoryEvent("user.created")
	m.Login("default", "replay")
	m.OrganizationServed("default")
	m.WebhookEndpoint("http://app/hooks")
	fams, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, f := range fams {
		out[f.GetName()] = true
		if f.GetType().String() == "HISTOGRAM" {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				out[f.GetName()+s] = true
			}
		}
	}
	return out
}

type fakeView struct{}

func (fakeView) Counts() (int, int, int)  { return 0, 0, 0 }
func (fakeView) Seq() int64               { return 0 }
func (fakeView) LastEventTime() time.Time { return time.Time{} }

var seriesName = regexp.MustCompile(`\bportcullis_[a-z_]+`)

// checkSeries fails for every portcullis_* name in expr that Portcullis
// does not export, and returns the names it found.
func checkSeries(t *testing.T, where, expr string, exported map[string]bool) []string {
	t.Helper()
	names := seriesName.FindAllString(expr, -1)
	for _, n := range names {
		if !exported[n] {
			t.Errorf("%s: %s is not a series Portcullis exports:\n%s", where, n, expr)
		}
	}
	return names
}

// requiredAlerts are the alerts: provisioning silent, SCIM errors
// rising, replica lag over the threshold, metadata refresh failing.
var requiredAlerts = []string{"PortcullisProvisioningSilent", "PortcullisSCIMErrorsRising", "PortcullisReplicaLagHigh", "PortcullisIdPMetadataRefreshFailing",
	"PortcullisWebhookBacklogGrowing"}

func init() {
	ciCases["monitoring"] = renderCase{
		kinds: map[string]int{"ServiceAccount": 1, "ConfigMap": 2, "Service": 2, "Deployment": 1, "PodDisruptionBudget": 1,
			"ServiceMonitor": 1, "PrometheusRule": 1},
		check: checkMonitoring,
	}
}

func checkMonitoring(t *testing.T, rel *release, vals map[string]any) {
	exported := exportedSeries(t)
	checkAlerts(t, rel, exported)
	checkDashboard(t, rel, exported)
}

func checkAlerts(t *testing.T, rel *release, exported map[string]bool) {
	t.Helper()
	pr := rel.prometheusRules[0]
	if pr.Labels["release"] != "kube-prometheus-stack" {
		t.Errorf("PrometheusRule labels %v: prometheusRule.labels not carried over", pr.Labels)
	}
	alerts := pr.alerts()
	want := append(slices.Clone(requiredAlerts), "PortcullisIdentityDrift")
	for _, name := range want {
		if _, ok := alerts[name]; !ok {
			t.Errorf("no alert %s; have %v", name, keys(alerts))
		}
	}
	var admin string
	for _, s := range rel.services {
		if strings.HasSuffix(s.Name, "-admin") {
			admin = s.Name
		}
	}
	selector := fmt.Sprintf(`namespace="%s",job="%s"`, namespace, admin)
	for name, a := range alerts {
		if names := checkSeries(t, "alert "+name, a.expr, exported); len(names) == 0 {
			t.Errorf("alert %s reads no Portcullis series: %s", name, a.expr)
		}
		if strings.Count(a.expr, "portcullis_") != strings.Count(a.expr, selector) {
			t.Errorf("alert %s: every series must select %s (the ServiceMonitor's job):\n%s", name, selector, a.expr)
		}
		if a.labels["severity"] == "" || a.labels["team"] != "identity" {
			t.Errorf("alert %s labels %v, want a severity and alertLabels' team", name, a.labels)
		}
		if a.annotations["summary"] == "" || a.annotations["description"] == "" {
			t.Errorf("alert %s lacks a summary or description", name)
		}
	}
	for name, frag := range map[string]string{
		"PortcullisProvisioningSilent":        "> 43200",
		"PortcullisSCIMErrorsRising":          "> 0.1",
		"PortcullisReplicaLagHigh":            "> 2",
		"PortcullisIdPMetadataRefreshFailing": "[4h]",
	} {
		if !strings.Contains(alerts[name].expr, frag) {
			t.Errorf("alert %s does not carry the values' threshold %q:\n%s", name, frag, alerts[name].expr)
		}
	}
}

func checkDashboard(t *testing.T, rel *release, exported map[string]bool) {
	t.Helper()
	cm := findByName(rel.configMaps, releaseName+"-portcullis-dashboard")
	if cm == nil {
		t.Fatalf("no dashboard ConfigMap among %d", len(rel.configMaps))
	}
	if cm.Labels["grafana_dashboard"] != "1" || cm.Annotations["grafana_folder"] != "Identity" {
		t.Errorf("dashboard ConfigMap labels %v annotations %v: the Grafana sidecar will not find it", cm.Labels, cm.Annotations)
	}
	var dash struct {
		UID    string `json:"uid"`
		Title  string `json:"title"`
		Panels []struct {
			ID      int    `json:"id"`
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal([]byte(cm.Data["portcullis.json"]), &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	if dash.UID == "" || dash.Title == "" {
		t.Errorf("dashboard needs a uid and a title")
	}
	ids := map[int]bool{}
	shown := map[string]bool{}
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d repeats", p.ID)
		}
		ids[p.ID] = true
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if err := balanced(tg.Expr); err != nil {
				t.Errorf("panel %q: %v: %s", p.Title, err, tg.Expr)
			}
			for _, n := range checkSeries(t, "panel "+p.Title, tg.Expr, exported) {
				shown[strings.TrimSuffix(n, "_bucket")] = true
			}
		}
	}
	// Every signal the README explains is on the dashboard.
	for _, n := range []string{metrics.NameRequests, metrics.NameRequestOverhead, metrics.NameSAMLLogins, metrics.NameMetadataAge,
		metrics.NameMetadataFailures, metrics.NameSCIMRequests, metrics.NameDirectoryEvents, metrics.NameLastEvent,
		metrics.NameDirectoryUsers, metrics.NameDirectoryGroups, metrics.NameSessionsRevoked, metrics.NameStreamsClosed,
		metrics.NameAppliedSeq, metrics.NamePropagationLag, metrics.NameIdentityDrift, metrics.NameDirectoryConfirmed} {
		if !shown[n] {
			t.Errorf("the dashboard does not show %s", n)
		}
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Both are off by default, and the alerts without drift are exactly the
// four the issue asks for.
func TestMonitoring_OffByDefaultAndDriftAlertOptional(t *testing.T) {
	r := decodeManifest(t, mustRender(t, minimalValues()))
	if n := len(r.prometheusRules); n != 0 {
		t.Errorf("default values render %d PrometheusRules", n)
	}
	for _, cm := range r.configMaps {
		if _, ok := cm.Data["portcullis.json"]; ok {
			t.Errorf("default values render the dashboard ConfigMap %s", cm.Name)
		}
	}
	vals := merge(minimalValues(), map[string]any{"prometheusRule": map[string]any{"enabled": true}})
	r = decodeManifest(t, mustRender(t, vals))
	if len(r.prometheusRules) != 1 {
		t.Fatalf("prometheusRule.enabled rendered %d PrometheusRules", len(r.prometheusRules))
	}
	if diff := keys(r.prometheusRules[0].alerts()); !slices.Equal(diff, func() []string { s := slices.Clone(requiredAlerts); slices.Sort(s); return s }()) {
		t.Errorf("alerts %v, want %v", diff, requiredAlerts)
	}
	sel := merge(vals, map[string]any{"prometheusRule": map[string]any{"seriesSelector": `cluster="eu1",app="sso"`}})
	r = decodeManifest(t, mustRender(t, sel))
	for name, a := range r.prometheusRules[0].alerts() {
		if !strings.Contains(a.expr, `{cluster="eu1",app="sso"`) || strings.Contains(a.expr, "job=") {
			t.Errorf("alert %s ignores seriesSelector:\n%s", name, a.expr)
		}
	}
}

func TestSchema_RejectsBadMonitoringValues(t *testing.T) {
	for _, tc := range []struct {
		name string
		vals map[string]any
		want []string
	}{
		{"error ratio over 1", merge(minimalValues(), map[string]any{"prometheusRule": map[string]any{"scimErrorRatio": 5}}),
			[]string{"/prometheusRule/scimErrorRatio", "maximum"}},
		{"silence as a duration string", merge(minimalValues(), map[string]any{"prometheusRule": map[string]any{"provisioningSilentSeconds": "1d"}}),
			[]string{"/prometheusRule/provisioningSilentSeconds", "want integer"}},
		{"selector with braces", merge(minimalValues(), map[string]any{"prometheusRule": map[string]any{"seriesSelector": `{job="x"}`}}),
			[]string{"/prometheusRule/seriesSelector", "does not match pattern"}},
		{"misspelt dashboard key", merge(minimalValues(), map[string]any{"grafanaDashboard": map[string]any{"enable": true}}),
			[]string{"/grafanaDashboard", "additional properties 'enable' not allowed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := render(t, loadChart(t), tc.vals)
			if err == nil {
				t.Fatal("rendered; want values.schema.json to reject the values")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
		})
	}
}
