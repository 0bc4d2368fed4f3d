// Package v1alpha1 holds the sbor.dev/v1alpha1 API: EventLifecycle, the operator's mirror of a
// published Sbor event inside Kubernetes.
//
// +kubebuilder:object:generate=true
// +groupName=sbor.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of every type in this package.
	GroupVersion = schema.GroupVersion{Group: "sbor.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the types of this package with a runtime.Scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the types of this package to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// addKnownTypes registers EventLifecycle and its list.
func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &EventLifecycle{}, &EventLifecycleList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
