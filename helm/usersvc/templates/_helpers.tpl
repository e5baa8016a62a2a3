{{/* Chart name, at most 63 characters (DNS label limit). */}}
{{- define "usersvc.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Prefix of every resource name: RELEASE-usersvc, or the release name when it already contains the chart name. */}}
{{- define "usersvc.fullname" -}}
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

{{- define "usersvc.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "usersvc.labels" -}}
helm.sh/chart: {{ include "usersvc.chart" . }}
app.kubernetes.io/name: {{ include "usersvc.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector of the service pods. The component label keeps the migration and database pods out of it. */}}
{{- define "usersvc.selectorLabels" -}}
app.kubernetes.io/name: {{ include "usersvc.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
{{- end }}

{{- define "usersvc.devDatabase.fullname" -}}
{{- printf "%s-db" (include "usersvc.fullname" . | trunc 60 | trimSuffix "-") }}
{{- end }}

{{- define "usersvc.devDatabase.selectorLabels" -}}
app.kubernetes.io/name: {{ include "usersvc.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: dev-database
{{- end }}

{{- define "usersvc.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "usersvc.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Image reference from a map with repository, tag and digest: repository:tag,
repository@digest, or repository:tag@digest when both are set. An empty tag
falls back to the chart's appVersion unless a digest pins the image.
Call with (dict "image" .Values.image "root" $).
*/}}
{{- define "usersvc.imageRef" -}}
{{- $tag := .image.tag | toString }}
{{- if and (not $tag) (not .image.digest) }}
{{- $tag = .root.Chart.AppVersion }}
{{- end }}
{{- .image.repository }}
{{- if $tag }}:{{ $tag }}{{ end }}
{{- if .image.digest }}@{{ .image.digest }}{{ end }}
{{- end }}

{{/* The database the pods use: sqlite, dev or external. values.schema.json guarantees exactly one applies. */}}
{{- define "usersvc.databaseMode" -}}
{{- if .Values.sqlite.enabled }}sqlite
{{- else if .Values.devDatabase.enabled }}dev
{{- else }}external
{{- end }}
{{- end }}

{{/* Name of the Secret created by the chart for database.url or database.password. */}}
{{- define "usersvc.databaseSecretName" -}}
{{- printf "%s-database" (include "usersvc.fullname" . | trunc 54 | trimSuffix "-") }}
{{- end }}

{{- define "usersvc.devDatabase.port" -}}
{{- if eq .Values.devDatabase.engine "postgres" }}5432{{ else }}3306{{ end }}
{{- end }}

{{- define "usersvc.externalDatabase.port" -}}
{{- if .Values.database.port }}{{ .Values.database.port }}
{{- else if hasPrefix "postgres" .Values.database.driver }}5432
{{- else }}3306
{{- end }}
{{- end }}

{{/*
Password of the dev database: the value when set, else the one stored in the
existing Secret, else a new random one. Reading the Secret keeps the password
stable across upgrades, because the database keeps the one it was created with.
*/}}
{{- define "usersvc.devDatabase.password" -}}
{{- if .Values.devDatabase.password }}
{{- .Values.devDatabase.password }}
{{- else }}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "usersvc.devDatabase.fullname" .) }}
{{- if and $existing $existing.data (hasKey $existing.data "password") }}
{{- index $existing.data "password" | b64dec }}
{{- else }}
{{- randAlphaNum 24 }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Database settings shared by the service and the migration container. Both
binaries read the same variables: DATABASE_URL, or the DATABASE_* parts with
the password from a Secret.
*/}}
{{- define "usersvc.databaseEnv" -}}
{{- $mode := include "usersvc.databaseMode" . }}
{{- if eq $mode "sqlite" }}
- name: DATABASE_URL
  value: "sqlite:///data/usersvc.db?mode=rwc"
{{- else if eq $mode "dev" }}
- name: DATABASE_DRIVER
  value: {{ .Values.devDatabase.engine | quote }}
- name: DATABASE_HOST
  value: {{ include "usersvc.devDatabase.fullname" . | quote }}
- name: DATABASE_PORT
  value: {{ include "usersvc.devDatabase.port" . | quote }}
- name: DATABASE_NAME
  value: {{ .Values.devDatabase.name | quote }}
- name: DATABASE_USERNAME
  value: {{ .Values.devDatabase.username | quote }}
- name: DATABASE_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "usersvc.devDatabase.fullname" . }}
      key: password
{{- else if .Values.database.url }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "usersvc.databaseSecretName" . }}
      key: url
{{- else }}
- name: DATABASE_DRIVER
  value: {{ .Values.database.driver | quote }}
- name: DATABASE_HOST
  value: {{ .Values.database.host | quote }}
- name: DATABASE_PORT
  value: {{ include "usersvc.externalDatabase.port" . | quote }}
- name: DATABASE_NAME
  value: {{ .Values.database.name | quote }}
- name: DATABASE_USERNAME
  value: {{ .Values.database.username | quote }}
{{- if .Values.database.existingSecret }}
{{- /* Optional, so a missing key starts the container and the binaries log the
       empty password and the server's rejection, instead of a kubelet event. */}}
- name: DATABASE_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.database.existingSecret }}
      key: {{ .Values.database.existingSecretKey }}
      optional: true
{{- else if .Values.database.password }}
- name: DATABASE_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "usersvc.databaseSecretName" . }}
      key: password
{{- end }}
{{- end }}
{{- end }}

{{/* Pod settings shared by the service, migration and test pods. */}}
{{- define "usersvc.podCommon" -}}
serviceAccountName: {{ include "usersvc.serviceAccountName" . }}
automountServiceAccountToken: {{ .Values.serviceAccount.automountServiceAccountToken }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end }}
