{{/*
Checks across values that values.schema.json cannot express clearly. Each
failure names the value and says what to do; all are reported at once.
*/}}
{{- define "portcullis.validate" -}}
{{- $v := .Values }}
{{- $p := list }}
{{- if and (include "portcullis.sqlite" .) (gt (int $v.replicaCount) 1) }}
{{- $p = append $p (printf "replicaCount is %d, but scim.enabled with store.driver sqlite keeps the directory in one SQLite file that only one pod can use: use store.driver postgres (with store.dsn or store.existingSecret) for more than one replica, or set replicaCount to 1" (int $v.replicaCount)) }}
{{- end }}
{{- if and (eq $v.mode "standalone") (not $v.upstream) }}
{{- $p = append $p "upstream is required in standalone mode: the URL of your app's Service, such as http://my-app.my-namespace.svc.cluster.local:3000" }}
{{- end }}
{{- if and (eq $v.mode "sidecar") (not $v.app.image.repository) }}
{{- $p = append $p "app.image.repository is required in sidecar mode: the image of your app, which runs beside Portcullis in each pod" }}
{{- end }}
{{- if and (eq $v.mode "sidecar") (or (eq (int $v.app.port) (int $v.ports.http)) (eq (int $v.app.port) (int $v.ports.admin))) }}
{{- $p = append $p (printf "app.port %d is also a Portcullis port (ports.http %d, ports.admin %d); the containers of a pod share one network, so give the app another port" (int $v.app.port) (int $v.ports.http) (int $v.ports.admin)) }}
{{- end }}
{{- if eq (int $v.ports.http) (int $v.ports.admin) }}
{{- $p = append $p "ports.http and ports.admin must differ" }}
{{- end }}
{{- $md := 0 }}
{{- range (list $v.saml.idpMetadataURL $v.saml.idpMetadata $v.saml.idpMetadataFile) }}{{ if . }}{{ $md = add1 $md }}{{ end }}{{ end }}
{{- $orgs := or $v.organizations $v.organizationsDir.files $v.organizationsDir.existingConfigMap }}
{{- if and (ne $md 1) (not (and $orgs (eq $md 0))) }}
{{- $p = append $p (printf "set exactly one of saml.idpMetadataURL, saml.idpMetadata (the XML) and saml.idpMetadataFile; %d are set (with organizations, none may be: there is then no default organization)" $md) }}
{{- end }}
{{- if and $v.organizationsDir.files $v.organizationsDir.existingConfigMap }}
{{- $p = append $p "organizationsDir.existingConfigMap is set, so leave organizationsDir.files empty (the files come from that ConfigMap)" }}
{{- end }}
{{- range $name, $_ := $v.organizationsDir.files }}
{{- if not (or (hasSuffix ".yaml" $name) (hasSuffix ".yml" $name)) }}
{{- $p = append $p (printf "organizationsDir.files: %q must end in .yaml (Portcullis reads only .yaml and .yml files there)" $name) }}
{{- end }}
{{- end }}
{{- range $i, $o := $v.organizations }}
{{- $s := $o.saml | default dict }}
{{- $n := 0 }}
{{- range (list $s.idpMetadataURL $s.idpMetadata $s.idpMetadataFile) }}{{ if . }}{{ $n = add1 $n }}{{ end }}{{ end }}
{{- if ne $n 1 }}
{{- $p = append $p (printf "organizations[%d] (%s): set exactly one of saml.idpMetadataURL, saml.idpMetadata (the XML) and saml.idpMetadataFile; %d are set" $i ($o.id | default "no id") $n) }}
{{- end }}
{{- end }}
{{- if $v.saml.existingSecret }}
{{- if or $v.saml.key $v.saml.cert }}
{{- $p = append $p "saml.existingSecret is set, so leave saml.key and saml.cert empty (the SP key pair comes from that Secret's sp.key and sp.crt)" }}
{{- end }}
{{- else if not (and $v.saml.key $v.saml.cert) }}
{{- $p = append $p "the SP key pair is missing: set saml.existingSecret to a Secret with the keys sp.key and sp.crt, or set saml.key and saml.cert (PEM; `portcullis keys --out DIR` makes both)" }}
{{- end }}
{{- if $v.session.existingSecret }}
{{- if $v.session.keys }}
{{- $p = append $p "session.existingSecret is set, so leave session.keys empty" }}
{{- end }}
{{- else if not $v.session.keys }}
{{- $p = append $p "the session keys are missing: set session.existingSecret to a Secret with the key session.keys, or set session.keys (`portcullis keys --out DIR` makes the file)" }}
{{- end }}
{{- if $v.scim.enabled }}
{{- if $v.scim.existingSecret }}
{{- if $v.scim.tokens }}
{{- $p = append $p "scim.existingSecret is set, so leave scim.tokens empty" }}
{{- end }}
{{- else if not $v.scim.tokens }}
{{- $p = append $p "scim.enabled needs tokens: set scim.existingSecret to a Secret with the key scim.tokens, or set scim.tokens" }}
{{- end }}
{{- end }}
{{- if include "portcullis.postgres" . }}
{{- if $v.store.existingSecret }}
{{- if $v.store.dsn }}
{{- $p = append $p "store.existingSecret is set, so leave store.dsn empty" }}
{{- end }}
{{- else if not $v.store.dsn }}
{{- $p = append $p "store.driver postgres needs a DSN: set store.existingSecret to a Secret with the key dsn, or set store.dsn" }}
{{- end }}
{{- end }}
{{- if and (include "portcullis.sqlite" .) $v.store.dsn (not (hasPrefix "/var/lib/portcullis/" $v.store.dsn)) }}
{{- $p = append $p (printf "store.dsn %q: with the sqlite driver it must be a file under /var/lib/portcullis/, where the chart mounts the volume (or leave it empty for /var/lib/portcullis/portcullis.db)" $v.store.dsn) }}
{{- end }}
{{- if and (eq $v.store.driver "sqlite") $v.store.existingSecret }}
{{- $p = append $p "store.existingSecret is only for the postgres driver; sqlite takes a file path in store.dsn" }}
{{- end }}
{{- if $p }}
{{- fail (printf "\n\nportcullis: %d problem(s) with the values:\n  - %s\n" (len $p) (join "\n  - " $p)) }}
{{- end }}
{{- end }}
