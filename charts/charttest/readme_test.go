package charttest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// TestREADME_SidecarSnippet keeps the README's "add the sidecar to an
// existing Deployment" snippet valid and in step with what the chart renders.
func TestREADME_SidecarSnippet(t *testing.T) {
	text, err := os.ReadFile(filepath.Join(chartDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(text), "<!-- sidecar-snippet: begin -->")
	block, _, ok2 := strings.Cut(rest, "<!-- sidecar-snippet: end -->")
	if !ok || !ok2 {
		t.Fatal("README.md has no sidecar-snippet markers")
	}
	var lines []string
	for _, l := range strings.Split(block, "\n") {
		l = strings.TrimPrefix(l, "   ") // the snippet sits in a list item
		if !strings.HasPrefix(l, "```") {
			lines = append(lines, l)
		}
	}
	obj, err := decodeObject([]byte(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatalf("README snippet: %v", err)
	}
	snippet, ok := obj.(*appsv1.Deployment)
	if !ok {
		t.Fatalf("README snippet is a %T, want a Deployment", obj)
	}
	got := containerByName(snippet.Spec.Template.Spec.Containers, "portcullis")
	if got == nil {
		t.Fatal("README snippet has no portcullis container")
	}

	rel := checkRelease(t, decodeManifest(t, mustRender(t, minimalValues())), nil)
	want := rel.portcullis
	for _, f := range []struct {
		name      string
		got, want any
	}{
		{"args", got.Args, want.Args},
		{"ports", got.Ports, want.Ports},
		{"livenessProbe", got.LivenessProbe, want.LivenessProbe},
		{"readinessProbe", got.ReadinessProbe, want.ReadinessProbe},
		{"resources", got.Resources, want.Resources},
		{"securityContext", got.SecurityContext, want.SecurityContext},
		{"mount paths", mountPaths(got), mountPaths(want)},
		{"pod fsGroup", snippet.Spec.Template.Spec.SecurityContext.FSGroup, rel.pod.SecurityContext.FSGroup},
		{"pod runAsNonRoot", snippet.Spec.Template.Spec.SecurityContext.RunAsNonRoot, rel.pod.SecurityContext.RunAsNonRoot},
		{"pod seccomp", snippet.Spec.Template.Spec.SecurityContext.SeccompProfile, rel.pod.SecurityContext.SeccompProfile},
		{"projected mode", projectedMode(snippet.Spec.Template.Spec.Volumes), projectedMode(rel.pod.Volumes)},
	} {
		if diff := cmp.Diff(f.want, f.got); diff != "" {
			t.Errorf("README snippet %s differs from the chart's (-chart +README):\n%s", f.name, diff)
		}
	}
}

func containerByName(cs []corev1.Container, name string) *corev1.Container {
	for i := range cs {
		if cs[i].Name == name {
			return &cs[i]
		}
	}
	return nil
}

func mountPaths(c *corev1.Container) []string {
	var p []string
	for _, m := range c.VolumeMounts {
		p = append(p, m.MountPath)
	}
	return p
}

func projectedMode(vols []corev1.Volume) *int32 {
	for _, v := range vols {
		if v.Projected != nil {
			return v.Projected.DefaultMode
		}
	}
	return nil
}
