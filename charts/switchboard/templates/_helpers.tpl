{{/*
Names, labels and the environment every Switchboard pod shares.
*/}}

{{/* The chart name (app.kubernetes.io/name). */}}
{{- define "switchboard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's full name: every object's name starts with it. */}}
{{- define "switchboard.fullname" -}}
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

{{/* helm.sh/chart */}}
{{- define "switchboard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
<fullname>-<suffix>, at most 63 characters: the full name is shortened, never the suffix,
so names stay distinct with a long release name.
Usage: include "switchboard.suffixedName" (dict "root" $ "suffix" "bootstrap-3")
*/}}
{{- define "switchboard.suffixedName" -}}
{{- $max := sub 62 (len .suffix) | int -}}
{{- printf "%s-%s" (include "switchboard.fullname" .root | trunc $max | trimSuffix "-") .suffix -}}
{{- end -}}

{{/*
The name of a component's objects: <fullname>-<name>.
Usage: include "switchboard.componentName" (dict "root" $ "name" "tickets")
*/}}
{{- define "switchboard.componentName" -}}
{{- include "switchboard.suffixedName" (dict "root" .root "suffix" .name) -}}
{{- end -}}

{{/* The bootstrap Job of this revision: <fullname>-bootstrap-<revision>. */}}
{{- define "switchboard.bootstrapJobName" -}}
{{- include "switchboard.suffixedName" (dict "root" . "suffix" (printf "bootstrap-%d" (int .Release.Revision))) -}}
{{- end -}}

{{/*
Selector labels: name and instance, plus the component when given.
Usage: include "switchboard.selectorLabels" (dict "root" $ "component" "tickets")
*/}}
{{- define "switchboard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "switchboard.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end -}}

{{/*
The standard labels of every object.
Usage: include "switchboard.labels" (dict "root" $ "component" "tickets")
*/}}
{{- define "switchboard.labels" -}}
{{ include "switchboard.selectorLabels" . }}
app.kubernetes.io/part-of: switchboard
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | replace "+" "_" | trunc 63 | quote }}
helm.sh/chart: {{ include "switchboard.chart" .root }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The ServiceAccount every pod runs as. */}}
{{- define "switchboard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "switchboard.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The image reference: repository@digest, or repository:tag (tag default: appVersion). */}}
{{- define "switchboard.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (toString (default .Chart.AppVersion .Values.image.tag)) -}}
{{- end -}}
{{- end -}}

{{/* The Secret the chart creates for connection URLs given in values. */}}
{{- define "switchboard.secretName" -}}
{{- include "switchboard.fullname" . -}}
{{- end -}}

{{/* Whether the chart creates that Secret: "true" or "". */}}
{{- define "switchboard.createSecret" -}}
{{- if or (include "switchboard.natsFromSecret" .) (include "switchboard.redisFromSecret" .) (include "switchboard.postgresqlFromChartSecret" .) .Values.credentialsKey.value .Values.threadKey.value -}}
true
{{- end -}}
{{- end -}}

{{- define "switchboard.natsFromSecret" -}}
{{- if and (not .Values.nats.enabled) (not .Values.nats.existingSecret) -}}true{{- end -}}
{{- end -}}

{{- define "switchboard.redisFromSecret" -}}
{{- if and (not .Values.redis.enabled) (not .Values.redis.existingSecret) -}}true{{- end -}}
{{- end -}}

{{- define "switchboard.postgresqlFromChartSecret" -}}
{{- if and (not .Values.postgresql.cnpg.enabled) (not .Values.postgresql.existingSecret) -}}true{{- end -}}
{{- end -}}

{{/*
Full name of a subchart (nats, redis), computed the way those charts compute it.
Usage: include "switchboard.subchartFullname" (dict "root" $ "chart" "nats")
*/}}
{{- define "switchboard.subchartFullname" -}}
{{- $values := index .root.Values .chart -}}
{{- if $values.fullnameOverride -}}
{{- $values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .chart $values.nameOverride -}}
{{- if contains $name .root.Release.Name -}}
{{- .root.Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .root.Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The CloudNativePG cluster name. */}}
{{- define "switchboard.cnpgClusterName" -}}
{{- if .Values.postgresql.cnpg.clusterName -}}
{{- .Values.postgresql.cnpg.clusterName | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-pg" (include "switchboard.fullname" . | trunc 47 | trimSuffix "-") -}}
{{- end -}}
{{- end -}}

{{/* Upper-case environment prefix of a component: SB_<NAME>. */}}
{{- define "switchboard.envPrefix" -}}
{{- printf "SB_%s" (upper .) -}}
{{- end -}}

{{/*
The components with their effective settings: serviceDefaults overlaid by
services.<name>. A key given for the component replaces the default's; a map merges one
level deep (each of its keys replaces the default's key), except ports and extraServices,
which are taken whole. Set (not merged by sprig's merge functions, which cannot override
with false). Fills the dict passed as "out", name → settings:
  {{- $components := dict }}{{- include "switchboard.components" (dict "root" $ "out" $components) }}
*/}}
{{- define "switchboard.components" -}}
{{- $whole := list "ports" "extraServices" -}}
{{- range $name, $given := .root.Values.services -}}
{{- $c := deepCopy $.root.Values.serviceDefaults -}}
{{- range $key, $value := ($given | default dict) -}}
{{- $base := get $c $key -}}
{{- if and (kindIs "map" $value) (kindIs "map" $base) (not (has $key $whole)) -}}
{{- range $k, $v := $value }}{{ $_ := set $base $k $v }}{{ end -}}
{{- else -}}
{{- $_ := set $c $key $value -}}
{{- end -}}
{{- end -}}
{{- $_ := set $.out $name $c -}}
{{- end -}}
{{- end -}}

{{/*
One component's effective settings (see switchboard.components), as YAML:
  include "switchboard.component" (dict "root" $ "name" "tickets") | fromYaml
*/}}
{{- define "switchboard.component" -}}
{{- $components := dict -}}
{{- include "switchboard.components" (dict "root" .root "out" $components) -}}
{{- toYaml (index $components .name) -}}
{{- end -}}

{{/* The gRPC components (those with a grpc port: every one but the gateway). */}}
{{- define "switchboard.grpcServices" -}}
{{- $components := dict -}}
{{- include "switchboard.components" (dict "root" . "out" $components) -}}
{{- $names := list -}}
{{- range $name, $c := $components -}}
{{- if hasKey $c.ports "grpc" }}{{ $names = append $names $name }}{{ end -}}
{{- end -}}
{{- join " " $names -}}
{{- end -}}

{{/* The components that own a PostgreSQL database and are enabled. */}}
{{- define "switchboard.databaseServices" -}}
{{- $components := dict -}}
{{- include "switchboard.components" (dict "root" . "out" $components) -}}
{{- $names := list -}}
{{- range $name, $c := $components -}}
{{- if and $c.enabled $c.database.enabled }}{{ $names = append $names $name }}{{ end -}}
{{- end -}}
{{- join " " $names -}}
{{- end -}}

{{/*
Environment every pod gets: SB_ENV, logging, NATS, Redis, and the address of every gRPC
service.
*/}}
{{- define "switchboard.commonEnv" -}}
- name: SB_ENV
  value: production
- name: SB_LOG_FORMAT
  value: json
- name: SB_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
- name: SB_NATS_REPLICAS
  value: {{ .Values.nats.streamReplicas | default 1 | quote }}
{{- if .Values.nats.enabled }}
- name: SB_NATS_URL
  value: {{ printf "nats://%s:4222" (include "switchboard.subchartFullname" (dict "root" . "chart" "nats")) | quote }}
{{- else }}
- name: SB_NATS_URL
  valueFrom:
    secretKeyRef:
      name: {{ default (include "switchboard.secretName" .) .Values.nats.existingSecret }}
      key: {{ if .Values.nats.existingSecret }}{{ .Values.nats.existingSecretKey }}{{ else }}nats-url{{ end }}
{{- end }}
{{- if .Values.redis.enabled }}
{{- $redis := include "switchboard.subchartFullname" (dict "root" . "chart" "redis") }}
{{- if .Values.redis.auth.enabled }}
- name: SB_REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ default $redis .Values.redis.auth.existingSecret }}
      key: {{ default "redis-password" .Values.redis.auth.existingSecretPasswordKey }}
- name: SB_REDIS_URL
  value: {{ printf "redis://:$(SB_REDIS_PASSWORD)@%s-master:6379/0" $redis | quote }}
{{- else }}
- name: SB_REDIS_URL
  value: {{ printf "redis://%s-master:6379/0" $redis | quote }}
{{- end }}
{{- else }}
- name: SB_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ default (include "switchboard.secretName" .) .Values.redis.existingSecret }}
      key: {{ if .Values.redis.existingSecret }}{{ .Values.redis.existingSecretKey }}{{ else }}redis-url{{ end }}
{{- end }}
{{- $components := dict }}
{{- include "switchboard.components" (dict "root" . "out" $components) }}
{{- range $name := splitList " " (include "switchboard.grpcServices" .) }}
{{- $svc := index $components $name }}
- name: {{ include "switchboard.envPrefix" $name }}_ADDR
  value: {{ printf "%s:%v" (include "switchboard.componentName" (dict "root" $ "name" $name)) (index $svc.ports "grpc") | quote }}
{{- end }}
{{- end -}}

{{/*
Where a component's PostgreSQL URL comes from: a dict with secret and key.
Usage: include "switchboard.databaseSecretRef" (dict "root" $ "name" "tickets") | fromYaml
*/}}
{{- define "switchboard.databaseSecretRef" -}}
{{- $pg := .root.Values.postgresql -}}
{{- $svc := include "switchboard.component" . | fromYaml -}}
{{- if $pg.cnpg.enabled -}}
name: {{ printf "%s-app" (include "switchboard.cnpgClusterName" .root) }}
key: uri
{{- else if $pg.existingSecret -}}
name: {{ $pg.existingSecret }}
key: {{ default $pg.existingSecretKey $svc.database.secretKey }}
{{- else if hasKey $pg.serviceUrls .name -}}
name: {{ include "switchboard.secretName" .root }}
key: {{ printf "%s-database-url" .name }}
{{- else if $pg.url -}}
name: {{ include "switchboard.secretName" .root }}
key: database-url
{{- else -}}
{{- fail (printf "postgresql: no database URL for %s: set postgresql.url, postgresql.serviceUrls.%s, postgresql.existingSecret or postgresql.cnpg.enabled" .name .name) -}}
{{- end -}}
{{- end -}}

{{/* The database name of a component. */}}
{{- define "switchboard.databaseName" -}}
{{- $svc := include "switchboard.component" . | fromYaml -}}
{{- default (printf "sb_%s" .name) $svc.database.name -}}
{{- end -}}

{{/* SB_DATABASE_CREATE: false with CloudNativePG, which creates the databases itself. */}}
{{- define "switchboard.databaseCreate" -}}
{{- if .Values.postgresql.cnpg.enabled -}}false{{- else -}}{{ .Values.postgresql.createDatabases | toString }}{{- end -}}
{{- end -}}

{{/* The pod-level parts every pod shares: service account, security, pull secrets. */}}
{{- define "switchboard.podCommon" -}}
serviceAccountName: {{ include "switchboard.serviceAccountName" . }}
automountServiceAccountToken: false
enableServiceLinks: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end -}}

{{/* The /tmp emptyDir volume. */}}
{{- define "switchboard.tmpVolume" -}}
- name: tmp
  emptyDir:
    {{- with .Values.tmpVolume.sizeLimit }}
    sizeLimit: {{ . }}
    {{- end }}
{{- end -}}

{{- define "switchboard.tmpVolumeMount" -}}
- name: tmp
  mountPath: /tmp
{{- end -}}

{{/* Checksum of the chart's Secret, so pods restart when a URL changes. */}}
{{- define "switchboard.secretChecksum" -}}
{{- if include "switchboard.createSecret" . -}}
checksum/secret: {{ include (print .Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end -}}
{{- end -}}
