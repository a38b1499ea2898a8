/**
 * Groups: a name and a member list (fingerprint and peer each) that travels in every group
 * message, so each member learns the group, and its changes, from the messages it receives. A
 * group message is one sealed message per other member. Bound: groupsMax (createGroup throws; a
 * group learned beyond it is not kept, counted `groups_full`); GROUP_MEMBERS_MAX members.
 */
import { UsageError } from '../core/errors.js';
import { ContentKind, GROUP_MEMBERS_MAX, GROUP_NAME_MAX_BYTES, TEXT_MAX_BYTES, encodeText, utf8Length, type GroupInfo, type GroupMember } from './content.js';
import type { GroupRecord } from './store.js';
import { hex, type ClientContext } from './context.js';
import type { ContactBook } from './contacts.js';
import type { Outgoing } from './outgoing.js';

export class GroupBook {
  constructor(private readonly ctx: ClientContext, private readonly contactBook: ContactBook, private readonly outgoing: Outgoing) {}

  list(): GroupInfo[] {
    return this.ctx.s.groups.map((g) => ({ id: g.id, name: g.name, members: g.members.map((m) => ({ ...m })) }));
  }

  /** A new group of `members` and this client (see Client.createGroup); returns its id. */
  create(name: string, members: readonly string[]): string {
    const s = this.ctx.s;
    if (typeof name !== 'string' || name.length === 0 || utf8Length(name) > GROUP_NAME_MAX_BYTES) {
      throw new UsageError('PEERPOST_GROUP_NAME', `group name must be 1..${GROUP_NAME_MAX_BYTES} UTF-8 bytes`);
    }
    if (s.groups.some((g) => g.name === name)) throw new UsageError('PEERPOST_GROUP_EXISTS', `a group "${name}" exists`);
    if (s.groups.length >= this.ctx.o.groupsMax) throw new UsageError('PEERPOST_GROUPS_FULL', `at most ${this.ctx.o.groupsMax} groups`);
    const list: GroupMember[] = [{ fingerprint: this.ctx.fingerprint, peer: this.ctx.senderPeer }];
    for (const m of members) {
      const t = this.contactBook.resolve(m);
      if (!list.some((x) => x.fingerprint === t.fp)) list.push({ fingerprint: t.fp, peer: t.peer });
    }
    if (list.length > GROUP_MEMBERS_MAX) throw new UsageError('PEERPOST_GROUP_TOO_LARGE', `a group has at most ${GROUP_MEMBERS_MAX} members`);
    const id = hex(this.ctx.random(16));
    s.groups.push({ id, name, members: list });
    this.ctx.dirty = true;
    return id;
  }

  /** Queue `text` to every other member of a group (by id or name); one message id each. */
  send(now: number, group: string, text: string): string[] {
    const s = this.ctx.s;
    const g = s.groups.find((x) => x.id === group || x.name === group);
    if (!g) throw new UsageError('PEERPOST_UNKNOWN_GROUP', `no group "${group}"`);
    if (utf8Length(text) > TEXT_MAX_BYTES) throw new UsageError('PEERPOST_TEXT_TOO_LONG', `text is longer than ${TEXT_MAX_BYTES} UTF-8 bytes`);
    const others = g.members.filter((m) => m.fingerprint !== this.ctx.fingerprint);
    this.outgoing.checkRoom(others.length);
    const body = encodeText({ text, group: { id: g.id, name: g.name, members: g.members } });
    return others.map((m) => {
      const c = s.contacts.find((x) => x.fingerprint === m.fingerprint);
      if (c?.changed) throw new UsageError('PEERPOST_CONTACT_CHANGED', `contact "${c.petname}" changed identity; confirm it first`);
      return this.outgoing.enqueue(now, { fp: m.fingerprint, peer: c?.peer ?? m.peer }, ContentKind.TEXT, body);
    });
  }

  /** A group as a received message describes it: keep it, or update the one with its id. */
  learn(g: GroupInfo): void {
    const s = this.ctx.s;
    const existing = s.groups.find((x) => x.id === g.id);
    const rec: GroupRecord = { id: g.id, name: g.name, members: g.members.map((m) => ({ ...m })) };
    if (existing) {
      if (JSON.stringify(existing) === JSON.stringify(rec)) return;
      existing.name = rec.name;
      existing.members = rec.members;
      this.ctx.dirty = true;
    } else {
      if (s.groups.length >= this.ctx.o.groupsMax) return void this.ctx.drops.add('groups_full');
      let name = rec.name;
      for (let i = 2; s.groups.some((x) => x.name === name); i++) name = `${rec.name} (${i})`;
      rec.name = name;
      s.groups.push(rec);
      this.ctx.dirty = true;
    }
    this.ctx.emit({ type: 'group', group: g });
  }
}
