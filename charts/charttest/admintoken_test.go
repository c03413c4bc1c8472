package charttest

import (
	"path"
	"testing"
)

// The admin token Secret becomes adminTokenFile, projected with the other
// secret files; without it the config names no token (the status page then
// answers 403 on the pod's all-address admin bind, and Portcullis warns).
func TestAdminToken_ExistingSecretBecomesAdminTokenFile(t *testing.T) {
	t.Parallel()
	tokenPath := path.Join(configDir, "admin.token")

	vals := merge(minimalValues(), map[string]any{"adminToken": map[string]any{"existingSecret": "portcullis-admin"}})
	rel := checkRelease(t, decodeManifest(t, mustRender(t, vals)), existingSecrets(vals))
	if rel.config.AdminTokenFile != tokenPath {
		t.Errorf("adminTokenFile = %q, want %q", rel.config.AdminTokenFile, tokenPath)
	}
	if got, want := rel.files[tokenPath], (fileSource{"Secret", "portcullis-admin", "admin.token"}); got != want {
		t.Errorf("%s comes from %+v, want %+v", tokenPath, got, want)
	}
	if !rel.config.AdminTokenRequired() {
		t.Error("the rendered config does not require the admin token")
	}

	rel = checkRelease(t, decodeManifest(t, mustRender(t, minimalValues())), nil)
	if rel.config.AdminTokenFile != "" {
		t.Errorf("without adminToken.existingSecret, adminTokenFile = %q, want none", rel.config.AdminTokenFile)
	}
	if src, ok := rel.files[tokenPath]; ok {
		t.Errorf("without adminToken.existingSecret, %s is projected from %+v", tokenPath, src)
	}
}
