{{/*
The series of this release's components, as scraped through the chart's ServiceMonitor: its
namespace, and the job Prometheus names after each component's Service.
*/}}
{{- define "sbor.metricsSelector" -}}
namespace="{{ .Release.Namespace }}", job=~"{{ include "sbor.fullname" . }}-({{ include "sbor.components" . | replace " " "|" }})"
{{- end }}

{{/* The reminder Jobs' series in kube-state-metrics, found by name (see values.yaml). */}}
{{- define "sbor.reminderJobSelector" -}}
namespace="{{ .Release.Namespace }}", job_name=~"remind-.+"
{{- end }}
