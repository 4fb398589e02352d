{{/*
Chart name, truncated to the 63 characters a label value allows.
*/}}
{{- define "ebpo.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's resources: the release name, plus the chart name unless the
release name already contains it.
*/}}
{{- define "ebpo.fullname" -}}
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

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "ebpo.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every resource.
*/}}
{{- define "ebpo.labels" -}}
helm.sh/chart: {{ include "ebpo.chart" . }}
{{ include "ebpo.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: eventbridge-partner-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Labels that select the operator pods; never change them (a Deployment's selector is immutable).
*/}}
{{- define "ebpo.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ebpo.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Name of the ServiceAccount the operator runs as.
*/}}
{{- define "ebpo.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ebpo.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name must name an existing ServiceAccount when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The image reference: repository@digest when a digest is set, else repository:tag with the
tag defaulting to the chart's appVersion.
*/}}
{{- define "ebpo.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Stops rendering on combinations that would run a broken operator.
*/}}
{{- define "ebpo.validate" -}}
{{- if and (gt (int .Values.replicas) 1) (not .Values.leaderElection.enabled) }}
{{- fail "replicas > 1 needs leaderElection.enabled: without it every replica would reconcile the same objects" }}
{{- end }}
{{- end }}

{{/*
Labels on the CRDs: those of every resource without the release instance, since a CRD is
shared by the whole cluster.
*/}}
{{- define "ebpo.crdLabels" -}}
helm.sh/chart: {{ include "ebpo.chart" . }}
app.kubernetes.io/name: {{ include "ebpo.name" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: eventbridge-partner-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}
