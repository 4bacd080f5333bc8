"""One `recordings import-twilio` run: the service's clients, the source, the accounts to
copy (the source's own and, when asked, its subaccounts), each into a local account of the
same SID."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from service.imports.importer import Importer, Plan, ensure_account
from service.imports.source import Credentials, TwilioSource
from service.imports.summary import Summary
from service.services import open_services
from service.settings import Settings

# Media transfers: a slow source gets a minute between bytes before the attempt is retried.
MEDIA_TIMEOUT = httpx.Timeout(60.0, connect=10.0)


async def run_import(
    settings: Settings,
    credentials: Credentials,
    api_url: str,
    plan: Plan,
    *,
    local_account: str | None = None,
    include_subaccounts: bool = False,
    on_account_created: Callable[[str, str], None] = lambda _sid, _token: None,
    on_progress: Callable[[Summary], None] | None = None,
) -> Summary:
    """Copy the source's recordings as ``plan`` says; the counts of what happened."""
    source = TwilioSource(credentials, api_url)
    limits = httpx.Limits(max_connections=plan.concurrency * 2)
    async with (
        open_services(settings) as services,
        httpx.AsyncClient(timeout=MEDIA_TIMEOUT, limits=limits) as http,
    ):
        importer = Importer(services, source, http, plan, on_progress=on_progress)
        pairs: list[tuple[str, str, str | None]] = [
            (credentials.account_sid, local_account or credentials.account_sid, None)
        ]
        if include_subaccounts:
            # Each subaccount lands in a local subaccount of its own SID, under the main one;
            # the token rule is the same as for the main account.
            pairs += [(a.sid, a.sid, a.auth_token) for a in await source.subaccounts()]
        main_local = pairs[0][1]
        for source_sid, local_sid, sub_token in pairs:
            if not plan.dry_run:
                token = None
                if plan.keep_auth_token:
                    main = source_sid == credentials.account_sid
                    token = credentials.auth_token if main else sub_token
                parent = None if local_sid == main_local else main_local
                new = await ensure_account(services, local_sid, token, parent)
                if new is not None:
                    on_account_created(new.account_sid, new.auth_token)
            await importer.import_account(source_sid, local_sid)
        return importer.summary
