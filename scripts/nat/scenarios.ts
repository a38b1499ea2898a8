/**
 * The real-NAT scenarios. Each builds its own world (namespaces, two peers, clients behind NAT
 * routers whose conntrack UDP timeouts are short), acts on it from the outside like a user and a
 * network would, and returns figures and the list of failed checks.
 */
import { now } from './ns-process.js';
import { addLoss, changeMapping, conntrackList, conntrackTimeouts, lossDrops } from './net.js';
import { Traffic, type TrafficReport } from './traffic.js';
import { World } from './world.js';

export interface ScenarioResult {
  figures: Record<string, unknown>;
  failures: string[];
}

export interface Scenario {
  key: string;
  title: string;
  /** Hard bound for the whole scenario, setup and teardown included. */
  capMs: number;
  run(w: World): Promise<ScenarioResult>;
  hosts: number;
}

/** Conntrack UDP timeouts in the NAT routers: a mapping idle this long is gone. */
export const CONNTRACK_UDP_TIMEOUT_S = 5;
/** Keepalive of the clients that keep their mapping open (well under the conntrack timeout). */
export const KEEPALIVE_S = 2;
/** Idle time of scenarios (a) and (b): four conntrack timeouts. */
export const IDLE_MS = 4 * CONNTRACK_UDP_TIMEOUT_S * 1000;
/** (a): a push to an idle client with keepalives must arrive within this. */
export const PUSH_LATENCY_MAX_MS = 1000;
/** (b): how long we watch for the push that must not arrive. */
export const NO_PUSH_WATCH_MS = 5000;
/**
 * (c): messages (PP_NAT_LOSS_MESSAGES, default 1,000), loss per NAT router each way, sender window.
 * At 20% loss a lost PUSH or ACK costs the peer's pushAckTimeoutMs (3 s) before it pushes again,
 * and the message keeps one of the eight per-recipient slots of its sender meanwhile: measured
 * about 12 messages/s in all, so 1,000 messages take about a minute and a half.
 */
export const LOSS_MESSAGES = Number(process.env.PP_NAT_LOSS_MESSAGES ?? 1000);
export const LOSS_PROBABILITY = 0.2;
export const LOSS_WINDOW_MESSAGES = 200;
export const LOSS_DEADLINE_MS = Math.max(300_000, LOSS_MESSAGES * 600);
/** (d), (e): steady stream rate and phases. */
export const STREAM_INTERVAL_MS = 100;
export const STREAM_BEFORE_MS = 4000;
export const STREAM_AFTER_MS = 6000;
/** (d): delivery must resume within one keepalive interval (its +20% jitter included) plus this. */
export const RESUME_SLACK_MS = 600;
/** (d): no traffic for this long before the quiet change (more than the peer's push retry gap). */
export const QUIET_MS = 6000;
/** (e): the peer stays down this long. */
export const PEER_DOWN_MS = 1500;
/** (d), (e): bound to wait for every message to be delivered at the end. */
export const SETTLE_MS = 150_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const round = (x: number | undefined): number | undefined => (x === undefined ? undefined : Math.round(x));

/** Send one message every `intervalMs` for `durationMs` (a traffic source, not a wait for an outcome). */
async function streamFor(t: Traffic, intervalMs: number, durationMs: number): Promise<void> {
  const end = now() + durationMs;
  while (now() < end) {
    t.send();
    await sleep(intervalMs);
  }
}

/** Period of the progress line of long scenarios. */
const PROGRESS_EVERY_MS = 30_000;

/** Print a progress line every PROGRESS_EVERY_MS while `f` runs. */
async function withProgress<T>(ts: Traffic[], f: () => Promise<T>): Promise<T> {
  const start = now();
  const timer = setInterval(() => {
    const parts = ts.map((t) => {
      const r = t.report();
      return `${t.prefix}: sent ${r.sent}, received ${r.receivedUnique}, delivered ${r.delivered}`;
    });
    process.stdout.write(`   ... ${Math.round((now() - start) / 1000)} s: ${parts.join('; ')}\n`);
  }, PROGRESS_EVERY_MS);
  try {
    return await f();
  } finally {
    clearInterval(timer);
  }
}

function trafficFigures(r: TrafficReport): Record<string, unknown> {
  return {
    sent: r.sent, receivedOnce: r.receivedUnique, duplicates: r.duplicates, missing: r.missing,
    delivered: r.delivered, failed: r.failed, latencyMs: r.latencyMs,
  };
}

/** (a) and (b) share one world: the same idle period, one client with keepalives, one without. */
export const idleScenario: Scenario = {
  key: 'ab',
  title: '(a) idle client with keepalive gets a push at once; (b) without keepalive the push is lost until it registers again',
  capMs: 120_000,
  hosts: 3,
  async run(w) {
    const failures: string[] = [];
    await Promise.all([w.startPeer(0), w.startPeer(1)]);
    const [alice, bob, carol] = await Promise.all([
      w.startClient('alice', 1, 0, KEEPALIVE_S),
      w.startClient('bob', 2, 1, KEEPALIVE_S),
      w.startClient('carol', 3, 0, 0),
    ]);
    await Promise.all([w.addContact(bob, alice), w.addContact(bob, carol), w.addContact(alice, bob), w.addContact(carol, bob)]);
    const timeouts = conntrackTimeouts(3);
    await sleep(IDLE_MS);
    const natEntries = { alice: conntrackList(1).length, carol: conntrackList(3).length };
    if (natEntries.carol !== 0) failures.push(`(b) carol's NAT still has ${natEntries.carol} UDP mappings after ${IDLE_MS} ms idle`);

    const ta = new Traffic(bob.proc, alice.proc, 'alice', 'idle-a');
    const tc = new Traffic(bob.proc, carol.proc, 'carol', 'idle-b');
    ta.send();
    tc.send();
    const gotA = await alice.proc.seenWithin((e) => e.event === 'message', PUSH_LATENCY_MAX_MS * 5);
    const latencyA = ta.report().latencyMs.max;
    if (!gotA || !(latencyA < PUSH_LATENCY_MAX_MS)) failures.push(`(a) push to alice took ${gotA ? `${latencyA} ms` : 'more than 5 s'} (bound ${PUSH_LATENCY_MAX_MS} ms)`);

    const gotC = await carol.proc.seenWithin((e) => e.event === 'message', NO_PUSH_WATCH_MS);
    if (gotC) failures.push('(b) carol got the push with keepalives off: its NAT mapping did not expire, the scenario proves nothing');
    const heldBefore = bob.proc.events.some((e) => e.event === 'delivery' && e.state === 'held');

    const restartAt = now();
    await carol.proc.stop('SIGTERM');
    const carol2 = await w.startClient('carol', 3, 0, 0);
    tc.attachRecipient(carol2.proc);
    const recovered = await tc.settle(now() + 20_000);
    const recoveryMs = round((tc.receivedAt.values().next().value ?? NaN) - restartAt);
    if (!recovered) failures.push('(b) carol did not receive the held message after registering again');
    failures.push(...ta.problems().map((p) => `(a) ${p}`), ...tc.problems().map((p) => `(b) ${p}`));
    return {
      failures,
      figures: {
        conntrackUdpTimeoutS: timeouts, idleMs: IDLE_MS, udpMappingsAfterIdle: natEntries,
        aPushLatencyMs: round(latencyA), bPushArrivedWithin5s: gotC, bSenderSawHeld: heldBefore,
        bRecoveryAfterRestartMs: recoveryMs,
      },
    };
  },
};

/** (c) Messages both ways across two NATs with 20% loss each way in each. */
export const lossScenario: Scenario = {
  key: 'c',
  title: `(c) ${LOSS_MESSAGES} messages (half each way) through two NATs with ${LOSS_PROBABILITY * 100}% loss each way: each delivered exactly once`,
  capMs: LOSS_DEADLINE_MS + 60_000,
  hosts: 2,
  async run(w) {
    await Promise.all([w.startPeer(0), w.startPeer(1)]);
    const [alice, bob] = await Promise.all([w.startClient('alice', 1, 0, KEEPALIVE_S), w.startClient('bob', 2, 1, KEEPALIVE_S)]);
    await Promise.all([w.addContact(bob, alice), w.addContact(alice, bob)]);
    addLoss(1, LOSS_PROBABILITY);
    addLoss(2, LOSS_PROBABILITY);
    const ab = new Traffic(alice.proc, bob.proc, 'bob', 'loss-ab');
    const ba = new Traffic(bob.proc, alice.proc, 'alice', 'loss-ba');
    const start = now();
    const deadline = start + LOSS_DEADLINE_MS;
    const half = Math.ceil(LOSS_MESSAGES / 2);
    const done = await withProgress([ab, ba], async () => {
      await Promise.all([ab.sendPaced(half, LOSS_WINDOW_MESSAGES, deadline), ba.sendPaced(LOSS_MESSAGES - half, LOSS_WINDOW_MESSAGES, deadline)]);
      const [x, y] = await Promise.all([ab.settle(deadline), ba.settle(deadline)]);
      return x && y;
    });
    const totalMs = now() - start;
    const failures = [...ab.problems().map((p) => `alice->bob: ${p}`), ...ba.problems().map((p) => `bob->alice: ${p}`)];
    if (!done) failures.unshift(`not complete after ${Math.round(totalMs)} ms`);
    const r1 = ab.report();
    const r2 = ba.report();
    return {
      failures,
      figures: {
        aliceToBob: trafficFigures(r1), bobToAlice: trafficFigures(r2), totalMs: Math.round(totalMs),
        messagesPerS: Math.round(((r1.receivedUnique + r2.receivedUnique) / totalMs) * 1000 * 10) / 10,
        datagramsDroppedByLossRules: { nat1: lossDrops(1), nat2: lossDrops(2) },
      },
    };
  },
};

/**
 * (d) The recipient's NAT changes its mapping twice: once mid-stream (new outside address), once
 * while quiet (same address, other ports) with one message sent right after the change.
 */
export const mappingScenario: Scenario = {
  key: 'd',
  title: '(d) the NAT mapping changes mid-stream and while quiet: delivery resumes within one keepalive interval',
  capMs: 2 * SETTLE_MS + 60_000,
  hosts: 2,
  async run(w) {
    await Promise.all([w.startPeer(0), w.startPeer(1)]);
    const [alice, bob] = await Promise.all([w.startClient('alice', 1, 0, KEEPALIVE_S), w.startClient('bob', 2, 1, KEEPALIVE_S)]);
    await Promise.all([w.addContact(bob, alice), w.addContact(alice, bob)]);
    const boundMs = KEEPALIVE_S * 1000 * 1.2 + RESUME_SLACK_MS;
    const failures: string[] = [];

    const t = new Traffic(bob.proc, alice.proc, 'alice', 'remap');
    await streamFor(t, STREAM_INTERVAL_MS, STREAM_BEFORE_MS);
    const swapAt = now();
    const newAddress = changeMapping(1, 'address');
    const after = streamFor(t, STREAM_INTERVAL_MS, STREAM_AFTER_MS);
    const resumedAt = await t.firstReceivedAfter(swapAt, swapAt + STREAM_AFTER_MS);
    await after;
    const viaNew = conntrackList(1).filter((l) => l.includes(newAddress)).length;
    const done = await t.settle(now() + SETTLE_MS);
    const allDoneMs = now() - swapAt;
    failures.push(...t.problems().map((p) => `stream: ${p}`));
    if (!done) failures.unshift('stream: not complete after it ended');
    const resumeMs = resumedAt === undefined ? undefined : resumedAt - swapAt;
    if (resumeMs === undefined || resumeMs > boundMs) failures.push(`stream: delivery resumed after ${round(resumeMs) ?? 'never'} ms (bound ${boundMs} ms)`);
    if (viaNew === 0) failures.push(`stream: no mapping via the new address ${newAddress}: the change did not happen`);

    await sleep(QUIET_MS);
    const q = new Traffic(bob.proc, alice.proc, 'alice', 'quiet');
    const quietAt = now();
    changeMapping(1, 'ports');
    q.send();
    const quietDone = await q.settle(now() + SETTLE_MS);
    const quietMs = (q.receivedAt.values().next().value ?? NaN) - quietAt;
    const viaPorts = conntrackList(1).filter((l) => /dport=40\d\d\d/.test(l)).length;
    failures.push(...q.problems().map((p) => `quiet: ${p}`));
    if (!quietDone || !(quietMs <= boundMs)) failures.push(`quiet: the message sent right after the change arrived after ${round(quietMs) ?? 'never'} ms (bound ${boundMs} ms)`);
    if (viaPorts === 0) failures.push('quiet: no mapping to the new port range: the change did not happen');
    return {
      failures,
      figures: {
        stream: { ...trafficFigures(t.report()), newAddress, mappingsViaNewAddress: viaNew, resumeAfterChangeMs: round(resumeMs), allDoneAfterChangeMs: Math.round(allDoneMs) },
        quiet: { quietBeforeMs: QUIET_MS, mappingsViaNewPorts: viaPorts, arrivalAfterChangeMs: round(quietMs) },
        resumeBoundMs: boundMs,
      },
    };
  },
};

/** (e) The recipient's peer is killed and restarted mid-stream. */
export const restartScenario: Scenario = {
  key: 'e',
  title: '(e) the peer is killed (SIGKILL) and restarted mid-stream: no message lost or duplicated',
  capMs: SETTLE_MS + 60_000,
  hosts: 2,
  async run(w) {
    await Promise.all([w.startPeer(0), w.startPeer(1)]);
    const [alice, bob] = await Promise.all([w.startClient('alice', 1, 0, KEEPALIVE_S), w.startClient('bob', 2, 1, KEEPALIVE_S)]);
    await Promise.all([w.addContact(bob, alice), w.addContact(alice, bob)]);
    const t = new Traffic(bob.proc, alice.proc, 'alice', 'restart');
    const stream = streamFor(t, STREAM_INTERVAL_MS, STREAM_BEFORE_MS + PEER_DOWN_MS + STREAM_AFTER_MS);
    await sleep(STREAM_BEFORE_MS);
    const killAt = now();
    const peer = w.peers[0];
    await peer?.stop('SIGKILL');
    await sleep(PEER_DOWN_MS);
    await w.startPeer(0);
    const upAt = now();
    const resumedAt = await t.firstReceivedAfter(upAt, upAt + STREAM_AFTER_MS);
    await stream;
    const done = await t.settle(now() + SETTLE_MS);
    const failures = t.problems();
    if (!done) failures.unshift('not complete after the stream ended');
    const reregistered = alice.proc.events.filter((e) => e.event === 'registered' && e.at > upAt).length;
    return {
      failures,
      figures: {
        ...trafficFigures(t.report()), peerDownMs: Math.round(upAt - killAt), firstMessageAfterRestartMs: round(resumedAt === undefined ? undefined : resumedAt - upAt),
        aliceRegisteredAgain: reregistered, allDoneAfterRestartMs: Math.round(now() - upAt),
      },
    };
  },
};

export const SCENARIOS: Scenario[] = [idleScenario, lossScenario, mappingScenario, restartScenario];
