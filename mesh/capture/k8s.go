package capture

import corev1 "k8s.io/api/core/v1"

type (
	corev1Pod       = corev1.Pod
	corev1Namespace = corev1.Namespace
)
