// Package charttest tests the Helm chart in ../portcullis with Helm as a
// library: lint with every example values file in ../portcullis/ci, render
// each one, decode every object strictly into its Kubernetes API type, check
// that the objects fit together (selectors, ports, mounted files), validate
// the rendered Portcullis config with config.Parse and, with a real binary,
// `portcullis check-config`, and compare the manifests with the golden files
// in ../portcullis/testdata (rewritten with -update). It has no non-test code.
package charttest
