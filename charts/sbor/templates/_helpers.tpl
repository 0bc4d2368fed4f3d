{{/*
Names, labels and the pieces every component shares.
*/}}

{{- define "sbor.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name prefix of every object. Kept to 40 characters so that derived names
(<fullname>-notification-db-rw, CloudNativePG's and Strimzi's own suffixes) stay within
the 63-character DNS label limit.
*/}}
{{- define "sbor.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "sbor.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The long-running components, in a stable order. */}}
{{- define "sbor.services" -}}
gateway user event ticket notification
{{- end }}

{{/* The services that own a database. */}}
{{- define "sbor.databaseServices" -}}
user event ticket notification
{{- end }}

{{/* The components that talk to Kafka. */}}
{{- define "sbor.kafkaComponents" -}}
event ticket notification operator
{{- end }}

{{/* Components rendered as Deployments: the services, and the operator when enabled. */}}
{{- define "sbor.components" -}}
{{- include "sbor.services" . }}{{ if .Values.operator.enabled }} operator{{ end }}
{{- end }}

{{/*
Selector labels of one component. Call with (dict "root" $ "component" "gateway").
*/}}
{{- define "sbor.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sbor.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Labels of the release as a whole (no component). */}}
{{- define "sbor.releaseLabels" -}}
app.kubernetes.io/name: {{ include "sbor.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Standard labels of one component's objects. Call with (dict "root" $ "component" "x"). */}}
{{- define "sbor.labels" -}}
helm.sh/chart: {{ include "sbor.chart" .root }}
{{ include "sbor.selectorLabels" . }}
app.kubernetes.io/part-of: sbor
app.kubernetes.io/version: {{ .root.Values.image.tag | default .root.Chart.AppVersion | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Labels of the database and Kafka resources. Without app.kubernetes.io/name, on purpose: the
operators may copy these labels onto their pods, which must not fall under the release's
default-deny NetworkPolicy (it selects name + instance). (dict "root" $ "component" "x")
*/}}
{{- define "sbor.dataLabels" -}}
helm.sh/chart: {{ include "sbor.chart" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/part-of: sbor
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "sbor.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end }}

{{/* Object name of one component. (dict "root" $ "component" "x") */}}
{{- define "sbor.componentName" -}}
{{ include "sbor.fullname" .root }}-{{ .component }}
{{- end }}

{{/* In-cluster base URL of a service. (dict "root" $ "component" "x") */}}
{{- define "sbor.serviceURL" -}}
http://{{ include "sbor.componentName" . }}:8080
{{- end }}

{{/* CloudNativePG Cluster name of a service's database. (dict "root" $ "component" "x") */}}
{{- define "sbor.dbClusterName" -}}
{{ include "sbor.fullname" .root }}-{{ .component }}-db
{{- end }}

{{/* Strimzi Kafka cluster name. */}}
{{- define "sbor.kafkaName" -}}
{{ include "sbor.fullname" . }}-kafka
{{- end }}

{{- define "sbor.kafkaBootstrap" -}}
{{- if .Values.kafka.external.enabled -}}
{{ required "kafka.external.bootstrapServers is required when kafka.external.enabled" .Values.kafka.external.bootstrapServers }}
{{- else -}}
{{ include "sbor.kafkaName" . }}-kafka-bootstrap:9092
{{- end -}}
{{- end }}

{{- define "sbor.kafkaReplicationFactor" -}}
{{- if not (kindIs "invalid" .Values.kafka.topics.replicationFactor) -}}
{{ .Values.kafka.topics.replicationFactor }}
{{- else if .Values.kafka.external.enabled -}}
3
{{- else -}}
{{ min 3 (int .Values.kafka.strimzi.replicas) }}
{{- end -}}
{{- end }}

{{- define "sbor.jwtSecretName" -}}
{{- if .Values.jwt.existingSecret -}}
{{ .Values.jwt.existingSecret }}
{{- else -}}
{{ include "sbor.fullname" . }}-jwt
{{- end -}}
{{- end }}

{{/* ServiceAccount of the operator's reminder Jobs. */}}
{{- define "sbor.reminderServiceAccount" -}}
{{ include "sbor.fullname" . }}-reminder
{{- end }}

{{/*
The environment variable carrying a service's database URL, from CloudNativePG's generated
app Secret (key "uri") or from the Secret named for an external server.
(dict "root" $ "component" "user")
*/}}
{{- define "sbor.databaseURLEnv" -}}
{{- $pg := .root.Values.postgres -}}
- name: SBOR_{{ upper .component }}_DATABASE_URL
  valueFrom:
    secretKeyRef:
{{- if $pg.external.enabled }}
{{- $ext := index $pg.external .component }}
      name: {{ required (printf "postgres.external.%s.secretName is required when postgres.external.enabled" .component) $ext.secretName }}
      key: {{ $ext.secretKey }}
{{- else }}
      name: {{ include "sbor.dbClusterName" . }}-app
      key: uri
{{- end }}
{{- end }}

{{/*
Pod Security "restricted": the pod and container security contexts of every sbor pod.
65532 is the nonroot user of the distroless base image.
*/}}
{{- define "sbor.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "sbor.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Egress to cluster DNS, a NetworkPolicyEgressRule. */}}
{{- define "sbor.dnsEgress" -}}
- to:
    - namespaceSelector:
        {{- toYaml .Values.networkPolicy.dns.namespaceSelector | nindent 8 }}
      podSelector:
        {{- toYaml .Values.networkPolicy.dns.podSelector | nindent 8 }}
  ports:
    - {protocol: UDP, port: 53}
    - {protocol: TCP, port: 53}
{{- end }}
