{{/*
Helpers of the entra-rbac-operator chart. Names are fixed (one release per cluster), as in deploy/.
*/}}

{{/* Labels on every object: deploy/'s part-of, plus what Helm users expect. */}}
{{- define "entra-rbac.labels" -}}
app.kubernetes.io/part-of: entra-rbac-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The image: repository@digest when a digest is set, else repository:tag (appVersion by default). */}}
{{- define "entra-rbac.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{/*
The operator's settings: deploy/settings.env (files/settings.env, a link to it, so the defaults have
one source), then .Values.settings on top. Rendered as ConfigMap data.
*/}}
{{- define "entra-rbac.settings" -}}
{{- $settings := dict -}}
{{- range .Files.Lines "files/settings.env" -}}
{{- $line := trim . -}}
{{- if and $line (not (hasPrefix "#" $line)) -}}
{{- $pair := splitn "=" 2 $line -}}
{{- $_ := set $settings $pair._0 $pair._1 -}}
{{- end -}}
{{- end -}}
{{- if .Values.standby.enabled -}}
{{- /* As deploy/standby: the primary at priority 100 (the standby's env says 50). */ -}}
{{- $_ := set $settings "ENTRA_RBAC_PEERING_PRIORITY" "100" -}}
{{- end -}}
{{- range $key, $value := .Values.settings -}}
{{- $_ := set $settings $key (toString $value) -}}
{{- end -}}
{{- toYaml $settings -}}
{{- end -}}

{{/* The guardrails as the ENTRA_RBAC_* keys deploy/guardrails.env holds. */}}
{{- define "entra-rbac.guardrails" -}}
{{- $g := .Values.guardrails -}}
{{- $pairs := list -}}
{{- range $group, $roles := $g.groupRoles -}}
{{- $pairs = append $pairs (printf "%s=%s" $group (join "," $roles)) -}}
{{- end -}}
ENTRA_RBAC_ALLOWED_CLUSTER_ROLES: {{ join "," $g.allowedClusterRoles | quote }}
ENTRA_RBAC_ALLOWED_ROLES: {{ join "," $g.allowedRoles | quote }}
ENTRA_RBAC_PRIVILEGED_ROLES: {{ join "," $g.privilegedRoles | quote }}
ENTRA_RBAC_FORBIDDEN_NAMESPACES: {{ join "," $g.forbiddenNamespaces | quote }}
ENTRA_RBAC_GROUP_ROLES: {{ join " " (sortAlpha $pairs) | quote }}
ENTRA_RBAC_MAX_WINDOW_ROLES: {{ join "," $g.maxWindowRoles | quote }}
ENTRA_RBAC_MAX_WINDOW: {{ $g.maxWindow | quote }}
{{- end -}}

{{/*
Objects taken as they are from a file of deploy/ (files/<name>, a link to it), so that static objects
have one source: each YAML document gets the chart's labels, and the release namespace wherever
deploy/ names the operator's namespace (metadata.namespace, ServiceAccount subjects).
Usage: include "entra-rbac.fromDeploy" (list . "clusterrole.yaml")
*/}}
{{- define "entra-rbac.fromDeploy" -}}
{{- $root := index . 0 -}}
{{- $labels := include "entra-rbac.labels" $root | fromYaml -}}
{{- range $doc := regexSplit "(?m)^---\\s*$" ($root.Files.Get (printf "files/%s" (index . 1))) -1 -}}
{{- $object := fromYaml $doc -}}
{{- if $object }}
{{- $meta := $object.metadata -}}
{{- $_ := set $meta "labels" (merge (dict) ($meta.labels | default dict) $labels) -}}
{{- if $meta.namespace -}}{{- $_ := set $meta "namespace" $root.Release.Namespace -}}{{- end -}}
{{- range $subject := ($object.subjects | default list) -}}
{{- if $subject.namespace -}}{{- $_ := set $subject "namespace" $root.Release.Namespace -}}{{- end -}}
{{- end }}
---
{{ toYaml $object }}
{{- end -}}
{{- end -}}
{{- end -}}
