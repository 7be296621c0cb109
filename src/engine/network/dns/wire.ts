/** Just enough of the DNS wire format (RFC 1035) to answer one-question queries with A or PTR records. */

export const TYPE_A = 1;
export const TYPE_PTR = 12;
export const CLASS_IN = 1;
export const RCODE_NOERROR = 0;
export const RCODE_SERVFAIL = 2;
export const RCODE_NXDOMAIN = 3;
export const RCODE_NOTIMP = 4;

export interface Query {
  id: number;
  flags: number;
  name: string;       // lower case, no trailing dot
  type: number;
  qclass: number;
  questionEnd: number; // offset just past the question, to copy it into the answer
}

/** The query's single question, or undefined for anything that is not a plain query. */
export function parseQuery(buf: Buffer): Query | undefined {
  if (buf.length < 12) return undefined;
  const flags = buf.readUInt16BE(2);
  if (flags & 0x8000) return undefined;                 // a response, not a query
  if (buf.readUInt16BE(4) !== 1) return undefined;      // exactly one question
  const labels: string[] = [];
  let off = 12;
  for (;;) {
    if (off >= buf.length) return undefined;
    const len = buf[off];
    if (len === 0) { off++; break; }
    if (len > 63 || off + 1 + len > buf.length) return undefined; // no compression in a question
    labels.push(buf.toString('latin1', off + 1, off + 1 + len));
    off += 1 + len;
  }
  if (off + 4 > buf.length) return undefined;
  return {
    id: buf.readUInt16BE(0),
    flags,
    name: labels.join('.').toLowerCase(),
    type: buf.readUInt16BE(off),
    qclass: buf.readUInt16BE(off + 2),
    questionEnd: off + 4,
  };
}

export function encodeName(name: string): Buffer {
  const parts = name.split('.').filter(Boolean).map((l) => {
    const b = Buffer.from(l, 'latin1');
    return Buffer.concat([Buffer.from([b.length]), b]);
  });
  return Buffer.concat([...parts, Buffer.from([0])]);
}

export interface ResourceRecord { type: number; data: Buffer }

export function aRecord(ip: string): ResourceRecord {
  return { type: TYPE_A, data: Buffer.from(ip.split('.').map(Number)) };
}

export function ptrRecord(name: string): ResourceRecord {
  return { type: TYPE_PTR, data: encodeName(name) };
}

/** An authoritative answer to `query` (raw bytes) with `records` for its question's name. */
export function answer(raw: Buffer, q: Query, rcode: number, records: ResourceRecord[], ttl = 600): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(q.id, 0);
  // QR, the query's opcode and RD, AA, RA, and the rcode.
  header.writeUInt16BE(0x8000 | (q.flags & 0x7800) | 0x0400 | (q.flags & 0x0100) | 0x0080 | (rcode & 0xf), 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(records.length, 6);
  const rrs = records.map((r) => {
    const rr = Buffer.alloc(12);
    rr.writeUInt16BE(0xc00c, 0);   // pointer to the question's name
    rr.writeUInt16BE(r.type, 2);
    rr.writeUInt16BE(CLASS_IN, 4);
    rr.writeUInt32BE(ttl, 6);
    rr.writeUInt16BE(r.data.length, 10);
    return Buffer.concat([rr, r.data]);
  });
  return Buffer.concat([header, raw.subarray(12, q.questionEnd), ...rrs]);
}

/** "4.3.2.1.in-addr.arpa" → "1.2.3.4", else undefined. */
export function reverseName(name: string): string | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.in-addr\.arpa$/.exec(name);
  return m ? [m[4], m[3], m[2], m[1]].join('.') : undefined;
}
