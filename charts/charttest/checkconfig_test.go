package charttest

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCheckConfig_RenderedPod lays out the files the rendered pod would see
// (the ConfigMap and Secret keys at their projected paths, in the kubelet's
// layout at the volume's defaultMode) in a temporary root and runs `portcullis check-config` on them: the config validates, and
// every key, certificate, token and metadata file is where the config says
// and parses. PostgreSQL is left out: it needs a database to check.
func TestCheckConfig_RenderedPod(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the portcullis binary; skipped with -short")
	}
	bin := buildPortcullis(t)
	keys := t.TempDir()
	runOK(t, bin, "keys", "--out", keys)
	spKey, spCert, sessionKeys := readFile(t, keys, "sp.key"), readFile(t, keys, "sp.crt"), readFile(t, keys, "session.keys")
	idpXML := idpMetadata(t)
	tokens := "okta " + randomHex(t, 32) + "\n"

	for _, tc := range []struct {
		name     string
		file     string
		override map[string]any
		cluster  map[string]map[string]string // Secrets that "exist": name → key → value
	}{
		{
			name: "sidecar with chart-made Secret and SCIM on SQLite",
			file: "sidecar-values.yaml",
			override: map[string]any{
				"replicaCount": 1,
				"saml":         map[string]any{"key": spKey, "cert": spCert, "idpMetadata": idpXML},
				"session":      map[string]any{"keys": sessionKeys},
				"scim":         map[string]any{"enabled": true, "tokens": tokens},
			},
		},
		{
			name: "standalone with existing Secrets",
			file: "standalone-sqlite-values.yaml",
			override: map[string]any{
				"saml": map[string]any{"idpMetadataURL": "", "idpMetadata": idpXML},
			},
			cluster: map[string]map[string]string{
				"portcullis-sp":      {"sp.key": spKey, "sp.crt": spCert},
				"portcullis-session": {"session.keys": sessionKeys},
				"portcullis-scim":    {"scim.tokens": tokens},
			},
		},
		{
			name: "standalone with an https upstream and cert-manager's Secret for mTLS",
			file: "standalone-sqlite-values.yaml",
			override: map[string]any{
				"upstream": "https://app.internal:8443",
				"saml":     map[string]any{"idpMetadataURL": "", "idpMetadata": idpXML},
				"upstreamTLS": map[string]any{"existingSecret": "app-client-tls", "caKey": "ca.crt",
					"certKey": "tls.crt", "keyKey": "tls.key", "serverName": "app.internal", "minVersion": "1.3"},
			},
			cluster: map[string]map[string]string{
				"portcullis-sp":      {"sp.key": spKey, "sp.crt": spCert},
				"portcullis-session": {"session.keys": sessionKeys},
				"portcullis-scim":    {"scim.tokens": tokens},
				"app-client-tls":     {"ca.crt": spCert, "tls.crt": spCert, "tls.key": spKey},
			},
		},
		{
			name: "organizations from the values and from organizationsDir, no default organization",
			file: "organizations-values.yaml",
			override: map[string]any{
				"organizations": []any{
					map[string]any{"id": "acme", "domains": []any{"acme.com"}, "saml": map[string]any{"idpMetadata": idpXML}},
					map[string]any{"id": "globex", "domains": []any{"globex.com"}, "hosts": []any{"globex.app.example.com"},
						"saml": map[string]any{"idpMetadata": idpMetadata(t)}},
				},
				"organizationsDir": map[string]any{"files": map[string]any{
					"initech.yaml": "id: initech\ndomains: [initech.com]\nsaml:\n  idpMetadataFile: " + configDir + "/org-globex-idp-metadata.xml\n",
				}},
			},
			cluster: map[string]map[string]string{
				"portcullis-sp":      {"sp.key": spKey, "sp.crt": spCert},
				"portcullis-session": {"session.keys": sessionKeys},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vals := merge(readValues(t, filepath.Join(chartDir, "ci", tc.file)), tc.override)
			rel := checkRelease(t, decodeManifest(t, mustRender(t, vals)), existingSecrets(vals))
			root := t.TempDir()
			contents := map[string][]byte{}
			for p, src := range rel.files {
				contents[p] = fileContent(t, rel, tc.cluster, src)
			}
			// The pod's absolute paths, moved under root.
			contents[configPath] = []byte(strings.NewReplacer(
				`"`+configDir+`/`, `"`+root+configDir+`/`,
				`"`+dataDir+`/`, `"`+root+dataDir+`/`,
				`"`+orgsDirPath+`"`, `"`+root+orgsDirPath+`"`,
			).Replace(rel.configText))
			writeProjected(t, filepath.Join(root, configDir), contents, fileMode(t, projectedMode(rel.pod.Volumes)))
			layOutOrgsDir(t, rel, root)
			cfgPath := filepath.Join(root, configPath)
			out := runOK(t, bin, "check-config", "--config", cfgPath)
			if !strings.Contains(out, "config ok") {
				t.Errorf("check-config said %q, want \"config ok\"", out)
			}
		})
	}
}

// layOutOrgsDir writes the organizations ConfigMap's files under root as
// the kubelet mounts them, their pod paths moved under root.
func layOutOrgsDir(t *testing.T, rel *release, root string) {
	t.Helper()
	v := volume(rel.pod, "organizations")
	if v == nil {
		return
	}
	cm := findByName(rel.configMaps, v.ConfigMap.Name)
	if cm == nil {
		t.Fatalf("organizations ConfigMap %s not rendered", v.ConfigMap.Name)
	}
	files := map[string][]byte{}
	for name, text := range cm.Data {
		files[configDir+"/"+name] = []byte(strings.ReplaceAll(text, configDir+"/", root+configDir+"/"))
	}
	writeProjected(t, filepath.Join(root, orgsDirPath), files, fileMode(t, v.ConfigMap.DefaultMode))
}

// fileMode is a defaultMode as a file mode.
func fileMode(t *testing.T, m *int32) os.FileMode {
	t.Helper()
	if m == nil {
		t.Fatal("the projected volume has no defaultMode")
	}
	return os.FileMode(*m)
}

// writeProjected lays files (pod paths under configDir → content) out in
// dir as the kubelet's atomic writer does, which is how Portcullis tells a
// Secret volume apart: the content at mode in a "..<timestamp>" directory,
// "..data" pointing at it, and each file a symlink into "..data".
func writeProjected(t *testing.T, dir string, files map[string][]byte, mode os.FileMode) {
	t.Helper()
	const stamp = "..2025_01_02_03_04_05.123456789"
	for p, data := range files {
		name := strings.TrimPrefix(p, configDir+"/")
		if name == p || strings.Contains(name, "/") {
			t.Fatalf("projected file %s is not directly in %s", p, configDir)
		}
		inner := filepath.Join(dir, stamp, name)
		writeFile(t, inner, data)
		if err := os.Chmod(inner, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(stamp, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
}

// fileContent is the value behind one projected file: from a rendered
// ConfigMap or Secret, or from a Secret the test pretends exists.
func fileContent(t *testing.T, rel *release, cluster map[string]map[string]string, src fileSource) []byte {
	t.Helper()
	switch src.kind {
	case "ConfigMap":
		if cm := findByName(rel.configMaps, src.name); cm != nil {
			return []byte(cm.Data[src.key])
		}
	case "Secret":
		if s := findByName(rel.secrets, src.name); s != nil {
			return s.Data[src.key]
		}
		if v, ok := cluster[src.name][src.key]; ok {
			return []byte(v)
		}
	}
	t.Fatalf("no content for %+v", src)
	return nil
}

// buildPortcullis builds ./cmd/portcullis into a temporary directory.
func buildPortcullis(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command in PATH to build portcullis: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "portcullis")
	cmd := exec.Command(goBin, "build", "-o", bin, "./cmd/portcullis")
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/portcullis: %v\n%s", err, out)
	}
	return bin
}

func runOK(t *testing.T, bin string, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("portcullis %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

func readFile(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// idpMetadata is the metadata of an IdP that exists only here: an
// EntityDescriptor with an HTTP-Redirect SingleSignOnService and a signing
// certificate, which is what Portcullis requires.
func idpMetadata(t *testing.T) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "test idp"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp.example.com/saml/idp">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing">
      <ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#">
        <ds:X509Data><ds:X509Certificate>%s</ds:X509Certificate></ds:X509Data>
      </ds:KeyInfo>
    </md:KeyDescriptor>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example.com/saml/sso"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>
`, base64.StdEncoding.EncodeToString(der))
}
