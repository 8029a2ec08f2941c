{{/*
Names and labels.
*/}}
{{- define "governance-jobs.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "governance-jobs.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "governance-jobs.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "governance-jobs.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: governance-jobs
{{- end -}}

{{- define "governance-jobs.selectorLabels" -}}
app.kubernetes.io/name: {{ include "governance-jobs.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/*
The image, by digest when one is given (it wins over the tag).
*/}}
{{- define "governance-jobs.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
A job's settings: the job's block deep-merged over jobDefaults (maps key by key, lists and
scalars replaced), keeping zero values (0, false, "") that mergeOverwrite would drop.
Call with (dict "root" $ "name" $name "job" $job); returns YAML (use fromYaml).
*/}}
{{- define "governance-jobs.settings" -}}
{{- $s := deepCopy .root.Values.jobDefaults -}}
{{- include "governance-jobs.mergeInto" (dict "dst" $s "src" .job) -}}
{{- if not $s.binary -}}
{{- $_ := set $s "binary" .name -}}
{{- end -}}
{{- toYaml $s -}}
{{- end -}}

{{/*
Deep merge of .src into .dst (in place): maps are merged key by key, anything else from .src
replaces, zero values included.
*/}}
{{- define "governance-jobs.mergeInto" -}}
{{- $dst := .dst -}}
{{- range $k, $v := .src -}}
{{- $cur := get $dst $k -}}
{{- if and (kindIs "map" $v) (kindIs "map" $cur) -}}
{{- include "governance-jobs.mergeInto" (dict "dst" $cur "src" $v) -}}
{{- else -}}
{{- $_ := set $dst $k (deepCopy $v) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The lock a job's run takes (its job.lock section, ttl-teardown's shape): the name from the
config, else runLock.name, else the job's name; the namespace from the config, else the
release's. Call with (dict "root" $ "name" $name "settings" $s); returns YAML.
*/}}
{{- define "governance-jobs.runLock" -}}
{{- $cfg := .settings.config | default dict -}}
{{- $lock := dig "job" "lock" dict $cfg -}}
{{- $run := .settings.runLock | default dict -}}
name: {{ $lock.name | default $run.name | default .name }}
namespace: {{ $lock.namespace | default .root.Release.Namespace }}
duration: {{ $lock.duration | default $run.duration | default "15m" }}
{{- end -}}

{{/*
A job's config file: the shared `config` with the job's `config` merged over it, plus the lock
the chart grants RBAC for. Call with (dict "root" $ "name" $name "settings" $s).
*/}}
{{- define "governance-jobs.config" -}}
{{- $c := deepCopy .root.Values.config -}}
{{- include "governance-jobs.mergeInto" (dict "dst" $c "src" (.settings.config | default dict)) -}}
{{- if .settings.runLock.enabled -}}
{{- $job := get $c "job" | default dict -}}
{{- $_ := set $job "lock" (include "governance-jobs.runLock" . | fromYaml) -}}
{{- $_ := set $c "job" $job -}}
{{- end -}}
{{- toYaml $c -}}
{{- end -}}

{{/*
The longest gap, in seconds, between two runs of a cron schedule — read conservatively (a
guess that is too long only delays an alert): a day-of-week field means weekly, a day-of-month
or month field monthly, a step or `*` in the hour field hourly or every n hours, a step in the
minute field of an every-hour schedule every n minutes, anything else daily.
*/}}
{{- define "governance-jobs.intervalSeconds" -}}
{{- $s := . | trim -}}
{{- $macros := dict "@yearly" 31622400 "@annually" 31622400 "@monthly" 2678400 "@weekly" 604800 "@daily" 86400 "@midnight" 86400 "@hourly" 3600 -}}
{{- if hasKey $macros $s -}}
{{- get $macros $s -}}
{{- else -}}
{{- $f := regexSplit "\\s+" $s -1 -}}
{{- $min := index $f 0 -}}
{{- $hour := index $f 1 -}}
{{- $dom := index $f 2 -}}
{{- $month := index $f 3 -}}
{{- $dow := index $f 4 -}}
{{- if ne $dow "*" -}}604800
{{- else if or (ne $dom "*") (ne $month "*") -}}2678400
{{- else if regexMatch "^\\*/[0-9]+$" $hour -}}{{ mul 3600 (trimPrefix "*/" $hour | atoi) }}
{{- else if eq $hour "*" -}}
{{- if regexMatch "^\\*/[0-9]+$" $min -}}{{ mul 60 (trimPrefix "*/" $min | atoi) }}
{{- else if eq $min "*" -}}60
{{- else -}}3600
{{- end -}}
{{- else -}}86400
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Seconds after which a job's last run is stale: staleAfterSeconds, or twice the shortest
interval among its enabled schedules. Call with the job's settings.
*/}}
{{- define "governance-jobs.staleAfter" -}}
{{- if .staleAfterSeconds -}}
{{- .staleAfterSeconds -}}
{{- else -}}
{{- $shortest := 0 -}}
{{- range $key, $sch := .schedules -}}
{{- if or (not (hasKey $sch "enabled")) $sch.enabled -}}
{{- $i := include "governance-jobs.intervalSeconds" $sch.schedule | atoi -}}
{{- if or (eq $shortest 0) (lt $i $shortest) -}}
{{- $shortest = $i -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- mul 2 $shortest -}}
{{- end -}}
{{- end -}}

{{/*
The ServiceAccount name of a workload. Call with (dict "root" $ "name" $name "sa" $sa).
*/}}
{{- define "governance-jobs.serviceAccountName" -}}
{{- if .sa.create -}}
{{- default (printf "%s-%s" (include "governance-jobs.fullname" .root) .name) .sa.name -}}
{{- else -}}
{{- default "default" .sa.name -}}
{{- end -}}
{{- end -}}

{{/*
Volumes for a workload: its config, /tmp, and the Secrets it lists.
Call with (dict "root" $ "configMap" $name "secrets" $list "extra" $extraVolumes).
*/}}
{{- define "governance-jobs.volumes" -}}
- name: config
  configMap:
    name: {{ .configMap }}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- $refs := .root.Values.secrets }}
{{- if and (has "smtpPassword" .secrets) $refs.smtpPassword.name }}
- name: smtp-password
  secret:
    secretName: {{ $refs.smtpPassword.name }}
    defaultMode: 0440
    items:
      - key: {{ $refs.smtpPassword.key }}
        path: password
{{- end }}
{{- if and (has "vaultToken" .secrets) $refs.vaultToken.name }}
- name: vault-token
  secret:
    secretName: {{ $refs.vaultToken.name }}
    defaultMode: 0440
    items:
      - key: {{ $refs.vaultToken.key }}
        path: token
{{- end }}
{{- if and (has "snoozeKeys" .secrets) $refs.snoozeKeys.name }}
- name: snooze-keys
  secret:
    secretName: {{ $refs.snoozeKeys.name }}
    defaultMode: 0440
{{- end }}
{{- if and (has "controlPlanePassword" .secrets) $refs.controlPlanePassword.name }}
- name: control-plane-password
  secret:
    secretName: {{ $refs.controlPlanePassword.name }}
    defaultMode: 0440
    items:
      - key: {{ $refs.controlPlanePassword.key }}
        path: password
{{- end }}
{{- with .extra }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "governance-jobs.volumeMounts" -}}
- name: config
  mountPath: /etc/governance
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- $refs := .root.Values.secrets }}
{{- if and (has "smtpPassword" .secrets) $refs.smtpPassword.name }}
- name: smtp-password
  mountPath: /var/run/secrets/governance/smtp
  readOnly: true
{{- end }}
{{- if and (has "vaultToken" .secrets) $refs.vaultToken.name }}
- name: vault-token
  mountPath: /var/run/secrets/governance/vault
  readOnly: true
{{- end }}
{{- if and (has "snoozeKeys" .secrets) $refs.snoozeKeys.name }}
- name: snooze-keys
  mountPath: /var/run/secrets/governance/snooze-keys
  readOnly: true
{{- end }}
{{- if and (has "controlPlanePassword" .secrets) $refs.controlPlanePassword.name }}
- name: control-plane-password
  mountPath: /var/run/secrets/governance/control-plane
  readOnly: true
{{- end }}
{{- with .extra }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
Environment from Secrets (webhook URL, PagerDuty key), then the workload's extraEnv.
*/}}
{{- define "governance-jobs.env" -}}
{{- $refs := .root.Values.secrets }}
{{- if and (has "chatWebhook" .secrets) $refs.chatWebhook.name }}
- name: GOV_CHAT_WEBHOOK_URL
  valueFrom:
    secretKeyRef:
      name: {{ $refs.chatWebhook.name }}
      key: {{ $refs.chatWebhook.key }}
{{- end }}
{{- if and (has "pagerduty" .secrets) $refs.pagerduty.name }}
- name: GOV_PAGERDUTY_ROUTING_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $refs.pagerduty.name }}
      key: {{ $refs.pagerduty.key }}
{{- end }}
{{- with .extra }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
Whether a monitoring object is rendered: renderMode against the cluster's API versions.
Call with (dict "root" $ "mode" $mode "api" "monitoring.coreos.com/v1/PrometheusRule" "what" "…").
*/}}
{{- define "governance-jobs.render" -}}
{{- $has := .root.Capabilities.APIVersions.Has .api -}}
{{- if eq .mode "alwaysRender" -}}true
{{- else if $has -}}true
{{- else if eq .mode "failIfMissing" -}}
{{- fail (printf "%s: renderMode failIfMissing, but the cluster has no %s (install prometheus-operator, or set renderMode)" .what .api) -}}
{{- end -}}
{{- end -}}

{{/*
The jobs that are enabled, with their settings: a list of (dict "name" "settings").
*/}}
{{- define "governance-jobs.enabledJobs" -}}
{{- $out := list -}}
{{- range $name, $job := .Values.jobs -}}
{{- $s := include "governance-jobs.settings" (dict "root" $ "name" $name "job" $job) | fromYaml -}}
{{- if $s.enabled -}}
{{- $out = append $out (dict "name" $name "settings" $s) -}}
{{- end -}}
{{- end -}}
{{- toYaml (dict "jobs" $out) -}}
{{- end -}}
