{{/* Chart name. */}}
{{- define "ferrogate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the prefix of every object (and the xDS Service name). */}}
{{- define "ferrogate.fullname" -}}
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

{{- define "ferrogate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels selecting the controller pods. */}}
{{- define "ferrogate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ferrogate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end }}

{{/* Labels of every object. */}}
{{- define "ferrogate.labels" -}}
helm.sh/chart: {{ include "ferrogate.chart" . }}
app.kubernetes.io/name: {{ include "ferrogate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: ferrogate
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "ferrogate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ferrogate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "ferrogate.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Pod and container security settings shared by the controller and certgen (from
values, so OpenShift can drop the fixed UIDs). */}}
{{- define "ferrogate.podSecurityContext" -}}
{{- toYaml (.Values.podSecurityContext | default dict) }}
{{- end }}

{{- define "ferrogate.containerSecurityContext" -}}
{{- toYaml (.Values.securityContext | default dict) }}
{{- end }}
