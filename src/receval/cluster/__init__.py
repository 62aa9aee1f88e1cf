"""The pipeline on Kubernetes: shipped manifests (:mod:`.manifests`) and the API client (:mod:`.client`)."""
