"""Names vulture reports as unused that are used, by something it cannot see (`make lint`).

vulture reads only `operator/` and `sandbox/`, so it misses uses by frameworks, by serialisation
and by the tests. Each name here says which. Functions registered by decorators (kopf handlers,
pydantic validators) are left out in `pyproject.toml` (`ignore_decorators`), not listed here.
A name that is really dead is removed from the code, never added here.
"""

from vulture.whitelist_utils import Whitelist

_ = Whitelist()

# --- Python protocols: the arguments of __aexit__ are part of its signature ---
_.exc_type
_.exc_value
_.traceback
# logging.Formatter calls this override (logsetup.py).
_.formatTime

# --- attributes set on a library's object, read by the library ---
# kubernetes.client.Configuration: the urllib3 pool size (adapters/kube/client.py).
_.connection_pool_maxsize
# kiota's RequestInformation: the body of a hand-built $batch request (adapters/directory/reads.py).
_.content
# kopf.OperatorSettings, tuned in one startup handler (triggers.tune_kopf).
_.progress_storage
_.diffbase_storage
_.reporting_component
_.standalone
_.clusterwide
_.mandatory
_.server_timeout
_.client_timeout
_.connect_timeout
_.consistency_timeout

# --- pydantic: model configuration and fields, read by pydantic and by model_dump ---
_.model_config
# The status model (core/models.py): its fields are the schema the unit tests hold build_status's
# output and the CRD to; the operator writes status as the dict build_status returns.
_.EntraGroupBindingStatus
_.observed_generation
_.last_transition_time
_.last_directory_sync
_.revocation_hold
_.last_handled_configuration
# The sandbox's directory file (entra/directory.py): fields served through model_dump.
_.userPrincipalName
_.userType
_.displayName
_.mail
_.accountEnabled
_.appId
_.servicePrincipalType
_.mailNickname
_.securityEnabled
_.mailEnabled

# --- API the tests use on purpose ---
# KubeAdapter's single binding writes (the reconciler writes in batches, write_bindings): the
# adapter's integration tests write and check bindings one at a time (tests/integration/kube).
_.create_binding
_.patch_binding
# The oracle the property tests check every generated binding name with (core/naming.py).
_.is_valid_binding_name
# CountingMetrics' totals, which the directory efficiency tests assert on.
_.total_requests
# The sandbox servers' in-process helpers for tests and benchmarks (tests/fixtures, bench/).
_.client_ssl_context
_.issue_token
_.request_counts
_.open_watch_count
# The sandbox OIDC issuer's test hooks (tests/sandbox_entra/test_oidc.py, tests/controlplane/fixtures.py).
_.retire
_.rotate
_.cluster_app_id
# The sandbox Graph delta test hook (tests/sandbox_entra/test_delta.py, tests/integration/directory).
_.expire_delta_tokens
# How often an informer listed its collection (tests/integration/kube/test_kube_cache.py).
_.lists
# How often the user-subject memo built subjects (tests/unit/test_subject_lists.py).
_.built
# Documents read through a held subject list (tests/unit/test_subject_bytes.py, tests/integration/kube).
_.recognised
