// Drives twilio-node, unmodified, against the service; prints one JSON object of what it saw.
// Run by tests/system/test_twilio_node.py with NODE_PATH pointing at a fresh `npm install twilio`.
"use strict";
const twilio = require("twilio");

const cfg = JSON.parse(process.argv[2]);

function client(token) {
  const c = twilio(cfg.accountSid, token || cfg.authToken);
  c.api.baseUrl = cfg.baseUrl;
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
  const c = client();
  const out = {};
  out.listAll = sids(await c.recordings.list());
  out.listPaged = sids(await c.recordings.list({ pageSize: 2 }));
  out.listLimit = sids(await c.recordings.list({ limit: 5, pageSize: 2 }));
  out.each = [];
  await new Promise((resolve, reject) =>
    c.recordings.each({
      pageSize: 3,
      callback: (r) => out.each.push(r.sid),
      done: (err) => (err ? reject(err) : resolve()),
    })
  );

  out.pages = [];
  let page = await c.recordings.page({ pageSize: 3 });
  let second = null;
  while (page) {
    out.pages.push(sids(page.instances));
    if (out.pages.length === 2) second = page;
    page = await page.nextPage();
  }
  out.previous = second ? sids((await second.previousPage()).instances) : null;

  const after = new Date(Date.UTC(2020, 0, 2));
  out.filters = {
    callSid: sids(await c.recordings.list({ callSid: cfg.callSid })),
    conferenceSid: sids(await c.recordings.list({ conferenceSid: cfg.conferenceSid })),
    after: sids(await c.recordings.list({ dateCreatedAfter: after })),
    before: sids(await c.recordings.list({ dateCreatedBefore: after })),
    range: sids(
      await c.recordings.list({ dateCreatedAfter: after, dateCreatedBefore: new Date(Date.UTC(2020, 0, 2, 12)), pageSize: 1 })
    ),
    on: sids(await c.recordings.list({ dateCreated: new Date(Date.UTC(2020, 0, 2, 12)) })),
  };

  out.callList = sids(await c.calls(cfg.callSid).recordings.list());
  const callOne = await c.calls(cfg.callSid).recordings(cfg.fetchSid).fetch();
  out.callFetch = { sid: callOne.sid, track: callOne.track, callSid: callOne.callSid };

  const r = await c.recordings(cfg.fetchSid).fetch();
  out.fetch = {
    accountSid: r.accountSid,
    apiVersion: r.apiVersion,
    callSid: r.callSid,
    conferenceSid: r.conferenceSid,
    dateCreated: r.dateCreated instanceof Date ? r.dateCreated.toISOString() : r.dateCreated,
    dateUpdated: r.dateUpdated instanceof Date ? r.dateUpdated.toISOString() : r.dateUpdated,
    startTime: r.startTime instanceof Date ? r.startTime.toISOString() : r.startTime,
    duration: r.duration,
    sid: r.sid,
    price: r.price,
    priceUnit: r.priceUnit,
    status: r.status,
    channels: r.channels,
    source: r.source,
    errorCode: r.errorCode,
    uri: r.uri,
    encryptionDetails: r.encryptionDetails,
    subresourceUris: r.subresourceUris,
    mediaUrl: r.mediaUrl,
  };

  out.removed = await c.recordings(cfg.deleteSid).remove();
  out.fetchAfterDelete = await failure(c.recordings(cfg.deleteSid).fetch());
  out.removeAgain = await failure(c.recordings(cfg.deleteSid).remove());
  const soft = await c.recordings(cfg.deleteSid).fetch({ includeSoftDeleted: true });
  out.softFetch = { sid: soft.sid, status: soft.status };
  out.softList = (await c.recordings.list({ includeSoftDeleted: true, pageSize: 2 })).map((x) => [x.sid, x.status]);
  out.listAfterDelete = sids(await c.recordings.list());

  out.wrongToken = await failure(client("0".repeat(32)).recordings(cfg.fetchSid).fetch());
  out.wrongTokenList = await failure(client("0".repeat(32)).recordings.list());
  out.foreign = await failure(c.recordings(cfg.foreignSid).fetch());
  out.otherAccount = await failure(c.api.v2010.accounts(cfg.otherAccountSid).recordings(cfg.foreignSid).fetch());
  out.badPageSize = await failure(c.recordings.page({ pageSize: 1001 }));

  // A conference's recordings, in another account of their own.
  const k = cfg.conference;
  const cc = twilio(k.accountSid, k.authToken);
  cc.api.baseUrl = cfg.baseUrl;
  const recs = cc.conferences(k.conferenceSid).recordings;
  const one = await recs(k.fetchSid).fetch();
  out.conference = {
    list: sids(await recs.list()),
    paged: sids(await recs.list({ pageSize: 1 })),
    after: sids(await recs.list({ dateCreatedAfter: new Date(k.after) })),
    fetch: {
      sid: one.sid,
      conferenceSid: one.conferenceSid,
      source: one.source,
      channels: one.channels,
      uri: one.uri,
      dateCreated: one.dateCreated instanceof Date ? one.dateCreated.toISOString() : one.dateCreated,
      startTime: one.startTime instanceof Date ? one.startTime.toISOString() : one.startTime,
    },
    elsewhere: await failure(cc.conferences(k.otherConferenceSid).recordings(k.fetchSid).fetch()),
    removed: await recs(k.fetchSid).remove(),
  };
  out.conference.fetchAfterDelete = await failure(recs(k.fetchSid).fetch());
  out.conference.listAfterDelete = sids(await recs.list());
  return out;
}

main().then(
  (out) => process.stdout.write(JSON.stringify(out)),
  (err) => {
    process.stderr.write(String((err && err.stack) || err));
    process.exit(1);
  }
);
