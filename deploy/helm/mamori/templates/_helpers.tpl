{{- define "mamori.name" -}}{{ .Release.Name | trunc 40 | trimSuffix "-" }}{{- end -}}
{{- define "mamori.server" -}}{{ include "mamori.name" . }}-server{{- end -}}
{{- define "mamori.cluster" -}}{{ include "mamori.name" . }}-cluster{{- end -}}
{{- define "mamori.image" -}}{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}{{- end -}}
{{- define "mamori.labels" -}}
app.kubernetes.io/name: mamori
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}
{{/* The restricted Pod Security Standard, for every pod of the chart. */}}
{{- define "mamori.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile: {type: RuntimeDefault}
{{- end -}}
{{- define "mamori.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities: {drop: [ALL]}
{{- end -}}
{{- define "mamori.serverURL" -}}
{{- if .Values.cluster.server -}}{{ .Values.cluster.server }}{{- else -}}https://{{ include "mamori.server" . }}.{{ .Release.Namespace }}.svc:{{ .Values.server.port }}{{- end -}}
{{- end -}}

{{/* The ConfigMap holding trusted_root.json: the user's, else the chart's (empty: none). */}}
{{- define "mamori.trustedRootConfigMap" -}}
{{- if .Values.trust.trustedRootConfigMap }}{{ .Values.trust.trustedRootConfigMap }}{{ else if .Values.trust.trustedRoot }}{{ include "mamori.name" . }}-trust{{ end -}}
{{- end -}}
