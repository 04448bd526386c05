"""Schemathesis hooks for tests/contract/run.sh (loaded through SCHEMATHESIS_HOOKS).

Every operation is called with a key of a role that reaches it, read from the operation's own
security requirement in the spec (written from `api::auth::ROUTES`), so the fuzzer gets past
authentication and exercises the handlers; the `ignored_auth` check separately sends requests
without a key or with a wrong one and expects 401.

Generated path ids rarely exist, so half of the well-formed ones are swapped for ids the service
holds (merchants m000000 to m000039, the demo merchant key's m000001, its loans, decisions made
before the run, the run's keys, the models): without that, almost every answer would be a 404
and the 200 bodies would go unchecked against their schemas.

The keys the run uses must survive it: a revocation aimed at one of them (the stateful phase
can take key ids from `GET /v1/keys`) is sent to a key issued for that purpose instead.
"""

import itertools
import os
import threading

import schemathesis
from hypothesis import strategies as st

ROLES = ("platform", "lender", "merchant", "admin")
KEYS = {role: os.environ[f"CONTRACT_{role.upper()}_KEY"] for role in ROLES}
# The ids of the keys above; revoking one would turn the rest of the run into 401s.
PROTECTED_KEY_IDS = set(os.environ["CONTRACT_PROTECTED_KEY_IDS"].split())
SACRIFICIAL_KEY_ID = os.environ["CONTRACT_SACRIFICIAL_KEY_ID"]

DEMO_MERCHANTS = [f"m{i:06d}" for i in range(40)]
DEMO_MERCHANT_OF_KEY = "m000001"
KNOWN_LOANS = os.environ.get("CONTRACT_LOAN_IDS", "").split()
KNOWN_DECISIONS = os.environ.get("CONTRACT_DECISION_IDS", "").split()
KNOWN_MODELS = os.environ.get("CONTRACT_MODEL_VERSIONS", "").split()
# Rotating any key is harmless (the old key keeps working); revoking one of the run's own is
# redirected in before_call below.
KNOWN_KEYS = sorted(PROTECTED_KEY_IDS) + [SACRIFICIAL_KEY_ID]
ID_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-")


def _well_formed_id(value):
    return isinstance(value, str) and 1 <= len(value) <= 64 and set(value) <= ID_CHARS


def role_for(operation):
    """The first role the operation's `api_key` requirement names, `lender` for any key, or None
    for an open route."""
    security = operation.definition.raw.get("security")
    if not security:
        return None
    for requirement in security:
        if "api_key" in requirement:
            roles = requirement["api_key"]
            return roles[0] if roles else "lender"
    return None


@schemathesis.auth(refresh_interval=None)
class RoleKey:
    def get(self, case, ctx):
        return KEYS

    def set(self, case, data, ctx):
        role = role_for(case.operation)
        if role is None:
            return
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data[role]}"


@schemathesis.hook
def flatmap_path_parameters(ctx, path_parameters):
    if not path_parameters:
        return st.just(path_parameters)
    known = {}
    if _well_formed_id(path_parameters.get("merchant_id")):
        pool = DEMO_MERCHANTS
        if role_for(ctx.operation) == "merchant":
            pool = [DEMO_MERCHANT_OF_KEY]
        known["merchant_id"] = st.sampled_from(pool)
    if KNOWN_LOANS and _well_formed_id(path_parameters.get("loan_id")):
        known["loan_id"] = st.sampled_from(KNOWN_LOANS)
    if KNOWN_DECISIONS and "decision_id" in path_parameters:
        known["decision_id"] = st.sampled_from(KNOWN_DECISIONS)
    if KNOWN_MODELS and _well_formed_id(path_parameters.get("version")):
        known["version"] = st.sampled_from(KNOWN_MODELS)
    if _well_formed_id(path_parameters.get("key_id")):
        known["key_id"] = st.sampled_from(KNOWN_KEYS)
    if not known:
        return st.just(path_parameters)
    return st.one_of(
        st.just(path_parameters),
        st.fixed_dictionaries(known).map(lambda ids: {**path_parameters, **ids}),
    )


@schemathesis.hook
def flatmap_body(ctx, body):
    # A loan or a score for a merchant that is not stored is a 422 or a 404: half of the loans
    # and scores with a well-formed merchant id are for a demo merchant instead.
    if (
        ctx.operation.path not in ("/v1/loans", "/v1/scores")
        or not isinstance(body, dict)
        or not _well_formed_id(body.get("merchant_id"))
        or body.get("merchant") is not None
    ):
        return st.just(body)
    return st.one_of(
        st.just(body),
        st.sampled_from(DEMO_MERCHANTS).map(lambda m: {**body, "merchant_id": m}),
    )


_idempotency_keys = itertools.count()


@schemathesis.hook
def before_call(ctx, case, kwargs):
    # Generated Idempotency-Keys repeat across different requests (the spec's example above all),
    # which the service rightly refuses with a 422; a well-formed key is made unique per request.
    # Replays of one key with one request are tested in tests/api/idempotency.rs.
    headers = case.headers or {}
    key = headers.get("Idempotency-Key")
    if isinstance(key, str) and 1 <= len(key) <= 200 and all("!" <= c <= "~" for c in key):
        case.headers = {**headers, "Idempotency-Key": f"{key}-{os.getpid()}-{next(_idempotency_keys)}"}
    params = case.path_parameters or {}
    if case.operation.path == "/v1/keys/{key_id}/revoke" and params.get("key_id") in PROTECTED_KEY_IDS:
        case.path_parameters = {**params, "key_id": SACRIFICIAL_KEY_ID}


_calls_log = os.environ.get("CONTRACT_CALLS_LOG")
_calls_lock = threading.Lock()


@schemathesis.hook
def after_call(ctx, case, response):
    """One line per request sent, `METHOD PATH STATUS`, for run.sh's cases per operation."""
    if _calls_log:
        with _calls_lock, open(_calls_log, "a") as log:
            sent = response.request.headers.get("Authorization", "")
            ours = any(sent == f"Bearer {k}" for k in KEYS.values())
            phase = case.meta.phase.name.value if case.meta is not None else "-"
            log.write(
                f"{case.operation.method.upper()} {case.operation.path} {response.status_code} "
                f"{'key' if ours else 'nokey'} {phase} {case.id}\n"
            )
