{{/*
The non-secret settings of one component, as a map of environment variables. They go into
the component's ConfigMap; anything secret (database URLs, the signing key) is referenced from
a Secret in the Deployment instead. Call with (dict "root" $ "component" "x").
*/}}
{{- define "sbor.configEnv" -}}
{{- $root := .root }}
{{- $v := $root.Values }}
{{- $c := .component }}
{{- $env := dict
  "SBOR_LOG_LEVEL" $v.log.level
  "SBOR_LOG_FORMAT" $v.log.format
  "SBOR_HTTP_ADDR" ":8080"
  "SBOR_METRICS_ADDR" ":9090"
}}
{{- if has $c (list "user" "event" "ticket" "notification") }}
{{- $_ := set $env "SBOR_MIGRATE_ON_START" (ternary "false" "true" $v.migrations.initContainer) }}
{{- $_ := set $env "SBOR_DB_MAX_CONNS" (toString (index $v $c).dbMaxConns) }}
{{- end }}
{{- if has $c (list "event" "ticket" "notification" "operator") }}
{{- $_ := set $env "KAFKA_BROKERS" (include "sbor.kafkaBootstrap" $root) }}
{{- $_ := set $env "SBOR_KAFKA_TOPIC_PREFIX" $v.kafka.topicPrefix }}
{{- $_ := set $env "SBOR_KAFKA_CREATE_TOPICS" (toString $v.kafka.topics.createOnStart) }}
{{- $_ := set $env "SBOR_KAFKA_PARTITIONS" (toString $v.kafka.topics.partitions) }}
{{- $_ := set $env "SBOR_KAFKA_REPLICATION_FACTOR" (include "sbor.kafkaReplicationFactor" $root) }}
{{- end }}
{{- if eq $c "gateway" }}
{{- $_ := set $env "SBOR_USER_URL" (include "sbor.serviceURL" (dict "root" $root "component" "user")) }}
{{- $_ := set $env "SBOR_EVENT_URL" (include "sbor.serviceURL" (dict "root" $root "component" "event")) }}
{{- $_ := set $env "SBOR_TICKET_URL" (include "sbor.serviceURL" (dict "root" $root "component" "ticket")) }}
{{- $_ := set $env "SBOR_NOTIFICATION_URL" (include "sbor.serviceURL" (dict "root" $root "component" "notification")) }}
{{- $_ := set $env "SBOR_JWT_ISSUER" $v.jwt.issuer }}
{{- $_ := set $env "SBOR_JWT_AUDIENCE" $v.jwt.audience }}
{{- with $v.gateway.trustedProxies }}
{{- $_ := set $env "SBOR_TRUSTED_PROXIES" (join "," .) }}
{{- end }}
{{- with $v.gateway.corsAllowedOrigins }}
{{- $_ := set $env "SBOR_CORS_ALLOWED_ORIGINS" (join "," .) }}
{{- end }}
{{- $_ := set $env "SBOR_MAX_BODY_BYTES" (toString (int64 $v.gateway.maxBodyBytes)) }}
{{- else if eq $c "user" }}
{{- $_ := set $env "SBOR_JWT_PRIVATE_KEY_FILE" (printf "/var/run/sbor/jwt/%s" $v.jwt.secretKey) }}
{{- $_ := set $env "SBOR_JWT_ISSUER" $v.jwt.issuer }}
{{- $_ := set $env "SBOR_JWT_AUDIENCE" $v.jwt.audience }}
{{- $_ := set $env "SBOR_ACCESS_TOKEN_TTL" $v.user.accessTokenTTL }}
{{- $_ := set $env "SBOR_REFRESH_TOKEN_TTL" $v.user.refreshTokenTTL }}
{{- $_ := set $env "SBOR_LOGIN_WINDOW" $v.user.loginWindow }}
{{- $_ := set $env "SBOR_LOGIN_MAX_PER_IP" (toString $v.user.loginMaxPerIP) }}
{{- $_ := set $env "SBOR_LOGIN_MAX_PER_ACCOUNT" (toString $v.user.loginMaxPerAccount) }}
{{- else if eq $c "event" }}
{{- $_ := set $env "SBOR_REMINDER_LEAD" $v.reminders.lead }}
{{- $_ := set $env "SBOR_REMINDER_INTERVAL" (ternary "0" $v.reminders.intervalWithoutOperator $v.operator.enabled) }}
{{- else if eq $c "ticket" }}
{{- $_ := set $env "SBOR_EVENT_URL" (include "sbor.serviceURL" (dict "root" $root "component" "event")) }}
{{- /* GET /internal/users?email=: door staff and transfers name users by email. */}}
{{- $_ := set $env "SBOR_USER_URL" (include "sbor.serviceURL" (dict "root" $root "component" "user")) }}
{{- else if eq $c "notification" }}
{{- $_ := set $env "SBOR_TICKET_URL" (include "sbor.serviceURL" (dict "root" $root "component" "ticket")) }}
{{- else if eq $c "operator" }}
{{- /* operator.Config: the reminder Job it creates, leader election, topic provisioning. */}}
{{- $_ := set $env "SBOR_EVENT_URL" (include "sbor.serviceURL" (dict "root" $root "component" "event")) }}
{{- $_ := set $env "SBOR_OPERATOR_REMINDER_LEAD" $v.reminders.lead }}
{{- $_ := set $env "SBOR_OPERATOR_REMINDER_IMAGE" (include "sbor.image" $root) }}
{{- $_ := set $env "SBOR_OPERATOR_REMINDER_PULL_POLICY" $v.image.pullPolicy }}
{{- $_ := set $env "SBOR_OPERATOR_REMINDER_SERVICE_ACCOUNT" (include "sbor.reminderServiceAccount" $root) }}
{{- /* The reminder pods carry the labels the NetworkPolicies select them by. */}}
{{- $_ := set $env "SBOR_OPERATOR_REMINDER_LABELS" (printf "app.kubernetes.io/name=%s,app.kubernetes.io/instance=%s,app.kubernetes.io/component=reminder,app.kubernetes.io/part-of=sbor" (include "sbor.name" $root) $root.Release.Name) }}
{{- $_ := set $env "SBOR_OPERATOR_LEADER_ELECTION" "true" }}
{{- $manageTopics := and $v.operator.manageKafkaTopics (not $v.kafka.external.enabled) $v.kafka.strimzi.topicOperator }}
{{- $_ := set $env "SBOR_OPERATOR_MANAGE_TOPICS" (toString $manageTopics) }}
{{- if not $v.kafka.external.enabled }}
{{- $_ := set $env "SBOR_OPERATOR_STRIMZI_CLUSTER" (include "sbor.kafkaName" $root) }}
{{- end }}
{{- end }}
{{- toYaml $env }}
{{- end }}
