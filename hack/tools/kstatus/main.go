// Command kstatus reads one Kubernetes resource as JSON on stdin and prints, as JSON on stdout,
// what kstatus (sigs.k8s.io/cli-utils/pkg/kstatus/status, the library Flux and kpt use to judge
// health) computes for it: {"status": "Current", "message": "..."}. A test helper: the tests feed
// it the status documents the operator writes and assert the verdict.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type verdict struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

func main() {
	raw, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kstatus: reading stdin:", err)
		os.Exit(2)
	}
	// UnmarshalJSON keeps integers as int64, as kstatus reads metadata.generation.
	resource := &unstructured.Unstructured{}
	if err := resource.UnmarshalJSON(raw); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus: stdin is not a Kubernetes resource in JSON:", err)
		os.Exit(2)
	}
	result, err := status.Compute(resource)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kstatus: status.Compute:", err)
		os.Exit(1)
	}
	out, _ := json.Marshal(verdict{Status: result.Status.String(), Message: result.Message})
	fmt.Println(string(out))
}
