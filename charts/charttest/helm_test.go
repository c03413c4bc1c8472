package charttest

import (
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/lint/support"
)

const (
	chartDir    = "../portcullis"
	releaseName = "sso"
	namespace   = "apps"
)

// kubeVersion is the cluster version the chart is rendered for. Helm as a
// library defaults to v1.20, below the chart's kubeVersion constraint.
var kubeVersion = &chartutil.KubeVersion{Version: "v1.30.0", Major: "1", Minor: "30"}

// loadChart loads the chart from its directory, as `helm template DIR` does.
func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load chart %s: %v", chartDir, err)
	}
	return ch
}

// ciValuesFiles lists the example values files under ci/, sorted.
func ciValuesFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no values files in %s/ci", chartDir)
	}
	slices.Sort(files)
	return files
}

// readValues reads a values file; a file that fails to load fails the test.
func readValues(t *testing.T, path string) map[string]any {
	t.Helper()
	v, err := chartutil.ReadValuesFile(path)
	if err != nil {
		t.Fatalf("read values %s: %v", path, err)
	}
	return v.AsMap()
}

// caseName is the values file's name without "-values.yaml".
func caseName(path string) string {
	n := strings.TrimSuffix(filepath.Base(path), ".yaml")
	return strings.TrimSuffix(n, "-values")
}

// render is `helm template sso CHART -n apps -f values`: a client-only,
// dry-run install. Values are checked against values.schema.json and the
// templates' `fail` calls surface as the error.
func render(t *testing.T, ch *chart.Chart, vals map[string]any) (string, error) {
	t.Helper()
	cfg := &action.Configuration{Log: func(string, ...any) {}}
	inst := action.NewInstall(cfg)
	inst.DryRun = true
	inst.ClientOnly = true
	inst.Replace = true
	inst.IncludeCRDs = false
	inst.ReleaseName = releaseName
	inst.Namespace = namespace
	inst.KubeVersion = kubeVersion
	rel, err := inst.Run(ch, vals)
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(rel.Info.Notes) == "" {
		t.Errorf("NOTES.txt rendered empty")
	}
	return rel.Manifest, nil
}

// mustRender renders or fails the test.
func mustRender(t *testing.T, vals map[string]any) string {
	t.Helper()
	m, err := render(t, loadChart(t), vals)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return m
}

// lintChart is `helm lint --strict CHART -f values`: errs holds every error
// and warning, others the informational messages.
func lintChart(t *testing.T, vals map[string]any) (errs, others []string) {
	t.Helper()
	l := action.NewLint()
	l.Strict = true
	l.Namespace = namespace
	l.KubeVersion = kubeVersion
	res := l.Run([]string{chartDir}, vals)
	for _, e := range res.Errors {
		errs = append(errs, e.Error())
	}
	for _, m := range res.Messages {
		if m.Severity >= support.WarningSev {
			errs = append(errs, m.Error())
		} else {
			others = append(others, m.Error())
		}
	}
	return slices.Compact(errs), others
}

// merge returns base with override merged in: maps recursively, everything
// else (lists included) replaced, as Helm merges -f files and --set. A nil
// in override stays nil, which Helm reads as "delete the chart's default".
func merge(base, override map[string]any) map[string]any {
	out := maps.Clone(base)
	if out == nil {
		out = map[string]any{}
	}
	for k, ov := range override {
		om, oIsMap := ov.(map[string]any)
		bm, _ := out[k].(map[string]any)
		if oIsMap {
			out[k] = merge(bm, om) // bm may be nil: then a copy of om
			continue
		}
		out[k] = ov
	}
	return out
}
