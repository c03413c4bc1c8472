package charttest

import (
	"net"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/portcullis-sso/portcullis/config"
)

const (
	configDir  = "/etc/portcullis"
	configPath = configDir + "/config.yaml"
	dataDir    = "/var/lib/portcullis"
	nonroot    = 65532
)

// release is a decoded render with the pieces every check needs.
type release struct {
	*rendered
	deploy     *appsv1.Deployment
	pod        *corev1.PodSpec
	portcullis *corev1.Container
	configText string
	config     *config.Config
	// files maps each path mounted from a ConfigMap or Secret to where it
	// comes from.
	files map[string]fileSource
}

// fileSource is one key of a ConfigMap or Secret, as projected into the pod.
type fileSource struct {
	kind, name, key string
}

// checkRelease checks that the objects of one render fit together and that
// the Portcullis container is set up as the chart promises. existing names
// the Secrets the values say exist in the cluster already.
func checkRelease(t *testing.T, r *rendered, existing []string) *release {
	t.Helper()
	rel := &release{rendered: r}
	if len(r.deployments) != 1 {
		t.Fatalf("want 1 Deployment, got %d", len(r.deployments))
	}
	rel.deploy = r.deployments[0]
	rel.pod = &rel.deploy.Spec.Template.Spec
	for i := range rel.pod.Containers {
		if rel.pod.Containers[i].Name == "portcullis" {
			rel.portcullis = &rel.pod.Containers[i]
		}
	}
	if rel.portcullis == nil {
		t.Fatalf("Deployment %s has no portcullis container", rel.deploy.Name)
	}
	checkDeployment(t, rel)
	rel.files = projectedFiles(t, rel, existing)
	checkConfig(t, rel)
	checkSelectorsAndPorts(t, rel)
	return rel
}

func checkDeployment(t *testing.T, rel *release) {
	t.Helper()
	d, pod, c := rel.deploy, rel.pod, rel.portcullis
	podLabels := labels.Set(d.Spec.Template.Labels)
	if sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector); err != nil || !sel.Matches(podLabels) {
		t.Errorf("Deployment selector %v does not match the pod labels %v (%v)", d.Spec.Selector, podLabels, err)
	}
	for _, a := range []string{"checksum/config", "checksum/secret"} {
		if len(d.Spec.Template.Annotations[a]) != 64 {
			t.Errorf("pod template annotation %s = %q, want a sha256", a, d.Spec.Template.Annotations[a])
		}
	}
	if want := []string{"serve", "--config", configPath}; !slices.Equal(c.Args, want) || len(c.Command) != 0 {
		t.Errorf("portcullis command %q args %q, want the image's entrypoint with args %q", c.Command, c.Args, want)
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if ports["http"] == 0 || ports["admin"] == 0 {
		t.Errorf("portcullis ports %v, want http and admin", c.Ports)
	}
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil || p.probe.HTTPGet.Path != p.path ||
			p.probe.HTTPGet.Port != intstr.FromString("admin") {
			t.Errorf("%s probe %+v, want GET %s on port admin", p.name, p.probe, p.path)
		}
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("portcullis resources %+v, want cpu and memory requests and a memory limit", c.Resources)
	}

	// Security: what restricted Pod Security Admission asks, and more.
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil ||
		psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault || psc.FSGroup == nil || *psc.FSGroup != nonroot {
		t.Errorf("pod securityContext %+v, want runAsNonRoot, fsGroup %d and seccomp RuntimeDefault", psc, nonroot)
	}
	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Errorf("portcullis has no securityContext")
	case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot, sc.RunAsUser == nil || *sc.RunAsUser != nonroot,
		sc.RunAsGroup == nil || *sc.RunAsGroup != nonroot:
		t.Errorf("portcullis securityContext runs as %v/%v (nonroot %v), want %d:%d", sc.RunAsUser, sc.RunAsGroup, sc.RunAsNonRoot, nonroot, nonroot)
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Errorf("portcullis securityContext: want readOnlyRootFilesystem")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Errorf("portcullis securityContext: want allowPrivilegeEscalation false")
	case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
		t.Errorf("portcullis securityContext capabilities %+v, want drop ALL", sc.Capabilities)
	case sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
		t.Errorf("portcullis securityContext: want seccomp RuntimeDefault")
	case sc.Privileged != nil && *sc.Privileged:
		t.Errorf("portcullis securityContext: privileged")
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Errorf("pod mounts a service account token; Portcullis never calls the API server")
	}

	// Every mount names a volume, and the fixed mounts are there.
	vols := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		if _, dup := vols[v.Name]; dup {
			t.Errorf("volume %s defined twice", v.Name)
		}
		vols[v.Name] = v
	}
	mounts := map[string]string{}
	for _, ctr := range pod.Containers {
		for _, m := range ctr.VolumeMounts {
			if _, ok := vols[m.Name]; !ok {
				t.Errorf("container %s mounts %s, which is not a volume of the pod", ctr.Name, m.Name)
			}
			if ctr.Name == "portcullis" {
				mounts[m.MountPath] = m.Name
			}
		}
	}
	if v := vols[mounts["/tmp"]]; v.EmptyDir == nil {
		t.Errorf("/tmp is not an emptyDir: mounts %v", mounts)
	}
	if v := vols[mounts[configDir]]; v.Projected == nil {
		t.Errorf("%s is not the projected config volume: mounts %v", configDir, mounts)
	}
	if d.Spec.Template.Spec.TerminationGracePeriodSeconds == nil || *d.Spec.Template.Spec.TerminationGracePeriodSeconds < 5 {
		t.Errorf("terminationGracePeriodSeconds %v, want the drain timeout and some", d.Spec.Template.Spec.TerminationGracePeriodSeconds)
	}
}

// projectedFiles lists the files of the projected config volume and checks
// that each comes from a rendered ConfigMap or Secret that has the key, or
// from a Secret the values name as existing.
func projectedFiles(t *testing.T, rel *release, existing []string) map[string]fileSource {
	t.Helper()
	files := map[string]fileSource{}
	var vol *corev1.Volume
	for i, v := range rel.pod.Volumes {
		if v.Projected != nil {
			vol = &rel.pod.Volumes[i]
		}
	}
	if vol == nil {
		return files
	}
	if m := vol.Projected.DefaultMode; m == nil || *m&0o077 != 0o040 {
		t.Errorf("projected files mode %v, want 0440 (owner and fsGroup read)", m)
	}
	for _, src := range vol.Projected.Sources {
		switch {
		case src.ConfigMap != nil:
			cm := findByName(rel.configMaps, src.ConfigMap.Name)
			if cm == nil {
				t.Errorf("projected ConfigMap %s is not rendered", src.ConfigMap.Name)
				continue
			}
			for _, it := range src.ConfigMap.Items {
				if _, ok := cm.Data[it.Key]; !ok {
					t.Errorf("ConfigMap %s has no key %s", cm.Name, it.Key)
				}
				addFile(t, files, it.Path, fileSource{"ConfigMap", cm.Name, it.Key})
			}
		case src.Secret != nil:
			s := findByName(rel.secrets, src.Secret.Name)
			if s == nil && !slices.Contains(existing, src.Secret.Name) {
				t.Errorf("projected Secret %s is neither rendered nor an existingSecret (%v)", src.Secret.Name, existing)
			}
			for _, it := range src.Secret.Items {
				if s != nil {
					if v, ok := s.Data[it.Key]; !ok || len(v) == 0 {
						t.Errorf("Secret %s has no (or an empty) key %s", s.Name, it.Key)
					}
				}
				addFile(t, files, it.Path, fileSource{"Secret", src.Secret.Name, it.Key})
			}
		default:
			t.Errorf("unexpected projected source %+v", src)
		}
	}
	return files
}

func addFile(t *testing.T, files map[string]fileSource, p string, src fileSource) {
	t.Helper()
	full := path.Join(configDir, p)
	if prev, dup := files[full]; dup {
		t.Errorf("%s projected twice: %v and %v", full, prev, src)
	}
	files[full] = src
}

// checkConfig validates the rendered config.yaml with config.Parse (which
// reads no files) and checks that every file it names is mounted.
func checkConfig(t *testing.T, rel *release) {
	t.Helper()
	var cm *corev1.ConfigMap
	for _, c := range rel.configMaps {
		if _, ok := c.Data["config.yaml"]; ok {
			cm = c
		}
	}
	if cm == nil {
		t.Fatalf("no ConfigMap with config.yaml")
	}
	if src, ok := rel.files[configPath]; !ok || src.name != cm.Name {
		t.Errorf("%s comes from %+v, want ConfigMap %s", configPath, src, cm.Name)
	}
	rel.configText = cm.Data["config.yaml"]
	cfg, err := config.Parse([]byte(rel.configText), configDir)
	if err != nil {
		t.Fatalf("rendered config.yaml does not validate: %v\n%s", err, rel.configText)
	}
	rel.config = cfg

	ports := map[string]int32{}
	for _, p := range rel.portcullis.Ports {
		ports[p.Name] = p.ContainerPort
	}
	for _, l := range []struct{ key, addr, port string }{{"listen", cfg.Listen, "http"}, {"adminListen", cfg.AdminListen, "admin"}} {
		host, port, err := net.SplitHostPort(l.addr)
		if err != nil || (host != "" && host != "0.0.0.0") || port != strconv.Itoa(int(ports[l.port])) {
			t.Errorf("config %s is %q; want all addresses on the %s container port %d", l.key, l.addr, l.port, ports[l.port])
		}
	}

	want := map[string]string{
		"saml.certFile":    cfg.SAML.CertFile,
		"saml.keyFile":     cfg.SAML.KeyFile,
		"session.keysFile": cfg.Session.KeysFile,
	}
	if cfg.SAML.IDPMetadataFile != "" {
		want["saml.idpMetadataFile"] = cfg.SAML.IDPMetadataFile
	}
	if cfg.AdminTokenFile != "" {
		want["adminTokenFile"] = cfg.AdminTokenFile
	}
	for _, o := range cfg.Organizations {
		if o.SAML.IDPMetadataFile != "" {
			want["organizations["+o.ID+"].saml.idpMetadataFile"] = o.SAML.IDPMetadataFile
		}
	}
	if cfg.SCIM.Enabled {
		want["scim.tokensFile"] = cfg.SCIM.TokensFile
		if cfg.Store.DSNFile != "" {
			want["store.dsnFile"] = cfg.Store.DSNFile
		}
	}
	for key, p := range want {
		if _, ok := rel.files[p]; !ok && !mountedByUser(rel, p) {
			t.Errorf("config %s names %s, which is not mounted (files: %v)", key, p, keysOf(rel.files))
		}
	}
	if cfg.SCIM.Enabled && cfg.Store.Driver == "sqlite" {
		if dir := path.Dir(cfg.Store.DSN); !mountedAt(rel.portcullis, dir) {
			t.Errorf("store.dsn %s: its directory %s is not a volume mount", cfg.Store.DSN, dir)
		}
	}
	if cfg.SCIM.Enabled && cfg.Store.Driver == "postgres" && cfg.Store.DSN != "" {
		t.Errorf("postgres DSN is inline in the ConfigMap; it belongs in the Secret (store.dsnFile)")
	}
}

// mountedByUser reports whether p lies under an extra volume mount.
func mountedByUser(rel *release, p string) bool {
	for _, m := range rel.portcullis.VolumeMounts {
		if m.MountPath != configDir && strings.HasPrefix(p, m.MountPath+"/") {
			return true
		}
	}
	return false
}

func mountedAt(c *corev1.Container, dir string) bool {
	for _, m := range c.VolumeMounts {
		if m.MountPath == dir {
			return true
		}
	}
	return false
}

// checkSelectorsAndPorts checks that Services, the PDB, the NetworkPolicy,
// the Ingress and the ServiceMonitor select the pods and name real ports.
func checkSelectorsAndPorts(t *testing.T, rel *release) {
	t.Helper()
	podLabels := labels.Set(rel.deploy.Spec.Template.Labels)
	podPorts := map[string]bool{}
	for _, c := range rel.pod.Containers {
		for _, p := range c.Ports {
			if podPorts[p.Name] {
				t.Errorf("port name %s used twice in the pod", p.Name)
			}
			podPorts[p.Name] = true
		}
	}
	for _, s := range rel.services {
		if !labels.SelectorFromSet(s.Spec.Selector).Matches(podLabels) || len(s.Spec.Selector) == 0 {
			t.Errorf("Service %s selector %v does not select the pods %v", s.Name, s.Spec.Selector, podLabels)
		}
		for _, p := range s.Spec.Ports {
			if p.TargetPort.Type != intstr.String || !podPorts[p.TargetPort.StrVal] {
				t.Errorf("Service %s port %s targets %v, not a named port of the pod", s.Name, p.Name, p.TargetPort)
			}
		}
	}
	for _, p := range rel.pdbs {
		if sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector); err != nil || !sel.Matches(podLabels) {
			t.Errorf("PodDisruptionBudget %s does not select the pods", p.Name)
		}
		if (p.Spec.MinAvailable == nil) == (p.Spec.MaxUnavailable == nil) {
			t.Errorf("PodDisruptionBudget %s: want exactly one of minAvailable and maxUnavailable", p.Name)
		}
	}
	for _, np := range rel.netpols {
		if sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector); err != nil || !sel.Matches(podLabels) {
			t.Errorf("NetworkPolicy %s does not select the pods", np.Name)
		}
		for _, in := range np.Spec.Ingress {
			for _, p := range in.Ports {
				if p.Port == nil || p.Port.Type != intstr.String || !podPorts[p.Port.StrVal] {
					t.Errorf("NetworkPolicy %s opens %v, not a named port of the pod", np.Name, p.Port)
				}
				if p.Port != nil && p.Port.StrVal == "app" {
					t.Errorf("NetworkPolicy %s opens the app's port, which bypasses Portcullis", np.Name)
				}
			}
		}
	}
	for _, ing := range rel.ingresses {
		for _, rule := range ing.Spec.Rules {
			if rule.HTTP == nil {
				t.Errorf("Ingress %s rule %s has no paths", ing.Name, rule.Host)
				continue
			}
			for _, p := range rule.HTTP.Paths {
				svc := findByName(rel.services, p.Backend.Service.Name)
				if svc == nil || !slices.ContainsFunc(svc.Spec.Ports, func(sp corev1.ServicePort) bool { return sp.Name == p.Backend.Service.Port.Name }) {
					t.Errorf("Ingress %s backend %+v is not a rendered Service port", ing.Name, p.Backend.Service)
				} else if svc.Spec.Ports[0].TargetPort.StrVal != "http" {
					t.Errorf("Ingress %s routes to %s, not Portcullis's http port", ing.Name, svc.Name)
				}
			}
		}
	}
	for _, sm := range rel.serviceMonitors {
		matched := 0
		for _, s := range rel.services {
			if !labels.SelectorFromSet(sm.Spec.Selector.MatchLabels).Matches(labels.Set(s.Labels)) {
				continue
			}
			matched++
			for _, ep := range sm.Spec.Endpoints {
				if !slices.ContainsFunc(s.Spec.Ports, func(sp corev1.ServicePort) bool {
					return sp.Name == ep.Port && sp.TargetPort.StrVal == "admin"
				}) {
					t.Errorf("ServiceMonitor %s scrapes port %s, which Service %s does not map to admin", sm.Name, ep.Port, s.Name)
				}
			}
		}
		if matched != 1 {
			t.Errorf("ServiceMonitor %s selects %d Services, want the admin Service only", sm.Name, matched)
		}
	}
}

type named interface{ GetName() string }

func findByName[T named](objs []T, name string) T {
	var zero T
	for _, o := range objs {
		if o.GetName() == name {
			return o
		}
	}
	return zero
}

func keysOf[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// existingSecrets lists the existingSecret values set in vals.
func existingSecrets(vals map[string]any) []string {
	var out []string
	for _, sec := range []string{"saml", "session", "scim", "store", "adminToken", "upstreamTLS"} {
		if m, ok := vals[sec].(map[string]any); ok {
			if n, _ := m["existingSecret"].(string); n != "" {
				out = append(out, n)
			}
		}
	}
	return out
}
