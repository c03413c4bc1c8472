{{/*
Names and labels.
*/}}
{{- define "portcullis.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "portcullis.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "portcullis.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "portcullis.selectorLabels" -}}
app.kubernetes.io/name: {{ include "portcullis.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "portcullis.labels" -}}
helm.sh/chart: {{ include "portcullis.chart" . }}
{{ include "portcullis.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "portcullis.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "portcullis.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
An image reference: repository@digest, or repository:tag.
Call with (dict "image" .Values.image "default" "<tag>").
*/}}
{{- define "portcullis.imageRef" -}}
{{- if .image.digest }}
{{- printf "%s@%s" .image.repository .image.digest }}
{{- else }}
{{- printf "%s:%s" .image.repository (.image.tag | default .default) }}
{{- end }}
{{- end }}

{{/*
Feature switches.
*/}}
{{- define "portcullis.sqlite" -}}
{{- if and .Values.scim.enabled (eq .Values.store.driver "sqlite") }}true{{ end }}
{{- end }}

{{- define "portcullis.postgres" -}}
{{- if and .Values.scim.enabled (eq .Values.store.driver "postgres") }}true{{ end }}
{{- end }}

{{/* The upstream: the value, or the app's port on loopback in sidecar mode. */}}
{{- define "portcullis.upstream" -}}
{{- if .Values.upstream }}
{{- .Values.upstream }}
{{- else if eq .Values.mode "sidecar" }}
{{- printf "http://127.0.0.1:%d" (int .Values.app.port) }}
{{- end }}
{{- end }}

{{/*
Secrets. Each part comes from the user's existingSecret or from the Secret
the chart makes (named like the release), never from both.
*/}}
{{- define "portcullis.secretName" -}}
{{- include "portcullis.fullname" . }}
{{- end }}

{{- define "portcullis.samlSecret" -}}
{{- .Values.saml.existingSecret | default (include "portcullis.secretName" .) }}
{{- end }}

{{- define "portcullis.sessionSecret" -}}
{{- .Values.session.existingSecret | default (include "portcullis.secretName" .) }}
{{- end }}

{{- define "portcullis.scimSecret" -}}
{{- .Values.scim.existingSecret | default (include "portcullis.secretName" .) }}
{{- end }}

{{- define "portcullis.storeSecret" -}}
{{- .Values.store.existingSecret | default (include "portcullis.secretName" .) }}
{{- end }}

{{/* Whether the chart makes a Secret at all. */}}
{{- define "portcullis.makesSecret" -}}
{{- if or (not .Values.saml.existingSecret) (not .Values.session.existingSecret) }}true{{ end }}
{{- if and .Values.scim.enabled (not .Values.scim.existingSecret) }}true{{ end }}
{{- if and (include "portcullis.postgres" .) (not .Values.store.existingSecret) }}true{{ end }}
{{- end }}

{{/*
Files under /etc/portcullis, one projected volume: the ConfigMap's
config.yaml (and idp-metadata.xml), then the secret files.
*/}}
{{- define "portcullis.configDir" -}}/etc/portcullis{{- end }}

{{- define "portcullis.checksums" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
checksum/secret: {{ include (print .Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end }}

{{/* The directory organizationsDir is mounted at. */}}
{{- define "portcullis.orgsDirPath" -}}/etc/portcullis-orgs.d{{- end }}

{{/* The ConfigMap mounted as organizationsDir, or nothing when none is. */}}
{{- define "portcullis.orgsConfigMap" -}}
{{- with .Values.organizationsDir }}
{{- if .existingConfigMap }}{{ .existingConfigMap }}
{{- else if .files }}{{ include "portcullis.fullname" $ }}-organizations
{{- end }}
{{- end }}
{{- end }}

{{/* The projected file holding organization id's IdP metadata XML (idpMetadata). */}}
{{- define "portcullis.orgMetadataFile" -}}org-{{ . }}-idp-metadata.xml{{- end }}
