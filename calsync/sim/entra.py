"""Entra ID (Azure AD) v2.0: OIDC discovery, JWKS and the client-credentials token endpoint."""

from __future__ import annotations

import base64
import datetime as dt
import hmac
import time
import uuid
from typing import TYPE_CHECKING, Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

if TYPE_CHECKING:
    from calsync.sim.core import SimCore
    from calsync.sim.directory import Tenant

OUTLOOK = "https://outlook.office365.com"
GRAPH = "https://graph.microsoft.com"
RESOURCES = {OUTLOOK: ["full_access_as_app"], GRAPH: ["Calendars.ReadWrite"]}
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def aad_error(
    status: int, error: str, code: int, text: str, headers: dict[str, str] | None = None
) -> web.Response:
    """An error body in Entra's JSON shape."""
    trace, corr = str(uuid.uuid4()), str(uuid.uuid4())
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    body = {
        "error": error,
        "error_description": (
            f"AADSTS{code}: {text} Trace ID: {trace} Correlation ID: {corr} Timestamp: {now}"
        ),
        "error_codes": [code],
        "timestamp": now,
        "trace_id": trace,
        "correlation_id": corr,
        "error_uri": f"https://login.microsoftonline.com/error?code={code}",
    }
    return web.json_response(body, status=status, headers=headers)


def _unknown_tenant(key: str) -> web.Response:
    return aad_error(
        400,
        "invalid_request",
        90002,
        f"Tenant '{key}' not found. Check to make sure you have the correct tenant ID and are "
        "signing into the correct cloud.",
    )


class Entra:
    """The Entra ID endpoints of one simulator."""

    def __init__(self, core: SimCore) -> None:
        self.core = core
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = uuid.uuid4().hex[:27]
        self._public = self.key.public_key()

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/common/discovery/instance", self.instance_discovery),
            web.get("/{tenant}/v2.0/.well-known/openid-configuration", self.openid_configuration),
            web.get("/{tenant}/.well-known/openid-configuration", self.openid_configuration),
            web.get("/{tenant}/discovery/v2.0/keys", self.jwks),
            web.post("/{tenant}/oauth2/v2.0/token", self.token),
            web.post("/{tenant}/oauth2/token", self.token),
        ]

    def _base(self) -> str:
        return self.core.base_url

    async def instance_discovery(self, request: web.Request) -> web.Response:
        host = request.host
        auth = request.query.get("authorization_endpoint", "")
        return web.json_response(
            {
                "tenant_discovery_endpoint": auth.replace(
                    "oauth2/v2.0/authorize", "v2.0/.well-known/openid-configuration"
                ),
                "api-version": "1.1",
                "metadata": [
                    {"preferred_network": host, "preferred_cache": host, "aliases": [host]}
                ],
            }
        )

    async def openid_configuration(self, request: web.Request) -> web.Response:
        key = request.match_info["tenant"]
        tenant = self.core.directory.tenant(key)
        if tenant is None:
            return _unknown_tenant(key)
        base, tid = self._base(), tenant.tenant_id
        return web.json_response(
            {
                "token_endpoint": f"{base}/{tid}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "jwks_uri": f"{base}/{tid}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": f"{base}/{tid}/v2.0",
                "request_uri_parameter_supported": False,
                "authorization_endpoint": f"{base}/{tid}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/{tid}/oauth2/v2.0/devicecode",
                "end_session_endpoint": f"{base}/{tid}/oauth2/v2.0/logout",
                "tenant_region_scope": "EU",
                "cloud_instance_name": "microsoftonline.com",
            }
        )

    async def jwks(self, request: web.Request) -> web.Response:
        jwk: dict[str, Any] = jwt.algorithms.RSAAlgorithm.to_jwk(self._public, as_dict=True)
        jwk.update({"kid": self.kid, "use": "sig", "alg": "RS256"})
        return web.json_response({"keys": [jwk]})

    async def token(self, request: web.Request) -> web.Response:
        key = request.match_info["tenant"]
        form = await request.post()
        if self.core.faults.active.get("token_outage"):
            return aad_error(
                503,
                "temporarily_unavailable",
                90033,
                "A transient error has occurred. Please try again.",
                headers={"Retry-After": "1"},
            )
        tenant = self.core.directory.tenant(key)
        if tenant is None:
            return _unknown_tenant(key)
        grant = str(form.get("grant_type", ""))
        if grant == "refresh_token":
            return aad_error(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'refresh_token'.",
            )
        if grant != "client_credentials":
            return aad_error(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{grant}'.",
            )
        client_id = str(form.get("client_id", ""))
        if not client_id and request.headers.get("Authorization", "").startswith("Basic "):
            client_id = _basic_user(request.headers["Authorization"])
        if client_id != tenant.client_id:
            return aad_error(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{tenant.name}'. This can happen if the application has not been installed by "
                "the administrator of the tenant or consented to by any user in the tenant.",
            )
        denied = self._authenticate(tenant, form)
        if denied is not None:
            return denied
        scope = str(form.get("scope", "")).split()
        resources = [s.removesuffix("/.default") for s in scope if s.endswith("/.default")]
        if len(resources) != 1 or resources[0] not in RESOURCES:
            return aad_error(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {' '.join(scope)} is not valid. Client credential "
                "flows must have a scope value with /.default suffixed to the resource identifier "
                "(application ID URI).",
            )
        appidacr = "2" if "client_assertion" in form else "1"
        self.core.stats.tokens_issued += 1
        lifetime = self.core.token_lifetime
        return web.json_response(
            {
                "token_type": "Bearer",
                "expires_in": lifetime,
                "ext_expires_in": lifetime,
                "access_token": self.mint(tenant, resources[0], appidacr, lifetime),
            }
        )

    def _authenticate(self, tenant: Tenant, form: Any) -> web.Response | None:
        if "client_assertion" in form:
            if form.get("client_assertion_type") != ASSERTION_TYPE:
                return aad_error(
                    400, "invalid_request", 90027, "client_assertion_type is not supported."
                )
            return self._check_assertion(tenant, str(form["client_assertion"]))
        secret = form.get("client_secret")
        if secret is None:
            return aad_error(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' "
                "or 'client_secret'.",
            )
        now = dt.datetime.now(dt.UTC)
        forced_expiry = self.core.faults.active.get("expire_secret") == tenant.name
        for candidate in tenant.secrets:
            if hmac.compare_digest(candidate.value, str(secret)):
                if forced_expiry or candidate.expires <= now:
                    return aad_error(
                        401,
                        "invalid_client",
                        7000222,
                        f"The provided client secret keys for app '{tenant.client_id}' are "
                        "expired. Visit the Azure portal to create new keys for your app.",
                    )
                return None
        return aad_error(
            401,
            "invalid_client",
            7000215,
            f"Invalid client secret provided. Ensure the secret being sent in the request is the "
            f"client secret value, not the client secret ID, for a secret added to app "
            f"'{tenant.client_id}'.",
        )

    def _check_assertion(self, tenant: Tenant, assertion: str) -> web.Response | None:
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            return aad_error(401, "invalid_client", 50027, "JWT token is invalid or malformed.")
        _, x5t, x5t256 = tenant.cert_thumbprints()
        given = {k: str(header[k]).rstrip("=") for k in ("x5t", "x5t#S256") if k in header}
        if not given or given.get("x5t", x5t) != x5t or given.get("x5t#S256", x5t256) != x5t256:
            return aad_error(
                401,
                "invalid_client",
                700027,
                "The certificate with identifier used to sign the client assertion is not "
                f"registered on application {tenant.client_id}.",
            )
        audience = f"{self._base()}/{tenant.tenant_id}/oauth2/v2.0/token"
        try:
            claims = jwt.decode(
                assertion,
                tenant.app_cert.cert.public_key(),  # type: ignore[arg-type]
                algorithms=["RS256", "PS256"],
                audience=[audience, audience.replace("/v2.0/token", "/token")],
                options={"require": ["exp", "aud", "iss", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            return aad_error(
                401,
                "invalid_client",
                700024,
                "Client assertion is not within its valid time range.",
            )
        except jwt.InvalidAudienceError:
            return aad_error(
                401,
                "invalid_client",
                50012,
                f"Client assertion audience claim does not match Realm issuer '{audience}'.",
            )
        except jwt.PyJWTError as exc:
            return aad_error(
                401,
                "invalid_client",
                700027,
                f"Client assertion failed signature validation. ({type(exc).__name__})",
            )
        if claims.get("iss") != tenant.client_id or claims.get("sub") != tenant.client_id:
            return aad_error(
                401,
                "invalid_client",
                700023,
                "Client assertion issuer and subject must be the client id.",
            )
        return None

    def mint(self, tenant: Tenant, resource: str, appidacr: str, lifetime: int) -> str:
        now = int(time.time())
        claims = {
            "aud": resource,
            "iss": f"https://sts.windows.net/{tenant.tenant_id}/",
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "appid": tenant.client_id,
            "appidacr": appidacr,
            "idp": f"https://sts.windows.net/{tenant.tenant_id}/",
            "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, tenant.client_id)),
            "roles": RESOURCES[resource],
            "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, tenant.client_id)),
            "tid": tenant.tenant_id,
            "uti": uuid.uuid4().hex[:22],
            "ver": "1.0",
        }
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})

    def verify(self, token: str, resource: str) -> dict[str, Any]:
        """Decode a bearer token for `resource`; raises jwt.PyJWTError when it is not valid."""
        claims: dict[str, Any] = jwt.decode(
            token,
            self._public,
            algorithms=["RS256"],
            audience=resource,
            options={"require": ["exp", "aud", "tid"]},
        )
        return claims


def _basic_user(header: str) -> str:
    try:
        raw = base64.b64decode(header.split(" ", 1)[1]).decode()
    except (ValueError, UnicodeDecodeError):
        return ""
    return raw.split(":", 1)[0]
