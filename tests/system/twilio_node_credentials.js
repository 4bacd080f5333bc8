// Drives twilio-node, unmodified, with every credential kind: an API key, a subaccount's token
// and its parent's, and the secondary AuthToken's rotation; prints one JSON object of what it saw.
// Run by tests/system/test_twilio_node_credentials.py with NODE_PATH at a fresh `npm install twilio`.
"use strict";
const twilio = require("twilio");

const cfg = JSON.parse(process.argv[2]);

function client(username, password, accountSid) {
  const c = twilio(username, password, accountSid ? { accountSid } : {});
  c.api.baseUrl = cfg.baseUrl;
  c.accounts.baseUrl = cfg.baseUrl;
  return c;
}

async function failure(promise) {
  try {
    await promise;
    return null;
  } catch (err) {
    return { status: err.status === undefined ? null : err.status, code: err.code === undefined ? null : err.code };
  }
}

const sids = (items) => items.map((r) => r.sid);

async function main() {
  const out = {};
  const parent = client(cfg.accountSid, cfg.authToken);

  // An API key: made by the parent, used as Twilio advises (key, secret, { accountSid }).
  const key = await parent.newKeys.create({ friendlyName: "node" });
  out.keySecretLength = key.secret.length;
  const app = client(key.sid, key.secret, cfg.accountSid);
  out.keyList = sids(await app.recordings.list());
  out.keyFetch = (await app.recordings(cfg.parentRecording).fetch()).accountSid;
  out.keyMakesKey = await failure(app.newKeys.create({ friendlyName: "mine" }));
  out.keyMakesAccount = await failure(app.api.v2010.accounts.create({ friendlyName: "mine" }));
  out.keysListed = sids(await parent.keys.list());
  out.keyRemoved = await parent.keys(key.sid).remove();
  out.keyAfterRemove = await failure(app.recordings(cfg.parentRecording).fetch());

  // A subaccount's own token, and its parent's acting for it; never upwards.
  const sub = client(cfg.subSid, cfg.subToken);
  out.subOwn = sids(await sub.recordings.list());
  out.parentActing = sids(await client(cfg.accountSid, cfg.authToken, cfg.subSid).recordings.list());
  out.subOnParent = await failure(sub.api.v2010.accounts(cfg.accountSid).recordings(cfg.parentRecording).fetch());
  const made = await parent.api.v2010.accounts.create({ friendlyName: "node sub" });
  out.made = { owner: made.ownerAccountSid, status: made.status, hasToken: Boolean(made.authToken) };
  out.family = sids(await parent.api.v2010.accounts.list());
  out.suspended = (await parent.api.v2010.accounts(made.sid).update({ status: "suspended" })).status;
  out.suspendedUse = await failure(client(made.sid, made.authToken).recordings.list());

  // The secondary AuthToken, promoted: the old primary stops.
  const secondary = await parent.accounts.v1.secondaryAuthToken().create();
  const next = client(cfg.accountSid, secondary.secondaryAuthToken);
  out.bothWork = [(await parent.recordings.list()).length, (await next.recordings.list()).length];
  const promoted = await next.accounts.v1.authTokenPromotion().update();
  out.promotedIsSecondary = promoted.authToken === secondary.secondaryAuthToken;
  out.oldAfterPromotion = await failure(parent.recordings(cfg.parentRecording).fetch());
  out.newAfterPromotion = (await next.recordings(cfg.parentRecording).fetch()).sid;
  console.log(JSON.stringify(out));
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : String(err));
  process.exit(1);
});
