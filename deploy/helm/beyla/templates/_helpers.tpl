{{/* Chart name, or nameOverride. */}}
{{- define "beyla.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name of the resources. */}}
{{- define "beyla.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "beyla.selectorLabels" -}}
app.kubernetes.io/name: {{ include "beyla.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "beyla.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "beyla.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "beyla.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "beyla.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
beyla-config.yml: logLevel, discovery (non-empty lists only) and
prometheus_export from their values, then the keys of .Values.config merged
over them, then Beyla's chart layout: .Values.config.data (the whole
beyla-config.yml in Beyla's chart) merged over all. The other keys of Beyla's
`config` (create, name, skipConfigMapCheck, checksum) say where the file
comes from, not what it holds.
*/}}
{{- define "beyla.config" -}}
{{- $cfg := dict "log_level" .Values.logLevel -}}
{{- $discovery := dict -}}
{{- range $key := list "services" "instrument" "exclude_services" "exclude_instrument" -}}
{{- with (get $.Values.discovery $key) -}}
{{- $_ := set $discovery $key . -}}
{{- end -}}
{{- end -}}
{{- if $discovery -}}
{{- $_ := set $cfg "discovery" $discovery -}}
{{- end -}}
{{- if .Values.prometheus.enabled -}}
{{- $_ := set $cfg "prometheus_export" (dict "port" (int .Values.prometheus.port) "path" .Values.prometheus.path) -}}
{{- end -}}
{{- $values := .Values.config | default dict -}}
{{- $own := omit $values "data" "create" "name" "skipConfigMapCheck" "checksum" -}}
{{- $merged := mustMergeOverwrite $cfg (deepCopy $own) (deepCopy ($values.data | default dict)) -}}
{{- if and (eq (.Values.preset | default "") "application") (not $merged.discovery) -}}
{{- /* Beyla's preset selects every process in a pod (k8s_namespace "*"); without Kubernetes metadata, every process in a container. */ -}}
{{- $_ := set $merged "discovery" (dict "instrument" (list (dict "exe_path" "*" "containers_only" true))) -}}
{{- end -}}
{{- toYaml $merged -}}
{{- end -}}

{{/* An external ConfigMap (Beyla's config.name) replaces the chart's. */}}
{{- define "beyla.configMapName" -}}
{{- $values := .Values.config | default dict -}}
{{- default (include "beyla.fullname" .) $values.name -}}
{{- end -}}

{{/* The Prometheus port the agent serves: the config's, else prometheus.port. */}}
{{- define "beyla.prometheusPort" -}}
{{- $cfg := include "beyla.config" . | fromYaml -}}
{{- $export := $cfg.prometheus_export | default dict -}}
{{- $export.port | default .Values.prometheus.port -}}
{{- end -}}
