import dns from 'node:dns';
import net from 'node:net';
import ipaddr from 'ipaddr.js';

/**
 * SSRF guard for webhook callback URLs. A callback URL is chosen by whoever submits a batch, and deliveries are
 * made from inside our network, so a URL must never let a submitter reach loopback, private, link-local or other
 * non-public addresses (cloud metadata at 169.254.169.254, the Temporal frontend, internal services). The URL is
 * checked at registration (`checkWebhookUrl`) and every connection is checked again after DNS resolution
 * (`guardedLookup`, `checkLiteralHost`), so a name that later resolves elsewhere (DNS rebinding) is refused too.
 * Operators may open chosen ranges with WEBHOOK_ALLOWED_CIDRS (tests allow 127.0.0.0/8 for their receiver).
 */

/** Thrown by the connect-time guard when a webhook host is, or resolves to, an address deliveries may not reach. */
export class WebhookAddressRefusedError extends Error {
  constructor(
    readonly host: string,
    readonly address: string,
    /** ipaddr.js's name for the range the address falls in (loopback, private, linkLocal, ...). */
    readonly range: string,
  ) {
    super(
      `webhook host '${host}' ${host === address ? 'is' : `resolves to ${address}, which is`} a ${range} address; ` +
        'deliveries reach only public unicast addresses unless WEBHOOK_ALLOWED_CIDRS allows it',
    );
    this.name = 'WebhookAddressRefusedError';
  }
}

type Cidr = [ipaddr.IPv4 | ipaddr.IPv6, number];

/**
 * Judges an IPv4-mapped IPv6 address (::ffff:a.b.c.d) by its IPv4 address: otherwise ::ffff:127.0.0.1 would
 * pass as an unremarkable IPv6 address and still connect to loopback.
 */
function normalize(address: ipaddr.IPv4 | ipaddr.IPv6): ipaddr.IPv4 | ipaddr.IPv6 {
  return address instanceof ipaddr.IPv6 && address.isIPv4MappedAddress() ? address.toIPv4Address() : address;
}

/** Parses the allowlist (already validated by the config schema); an IPv4-mapped IPv6 CIDR becomes IPv4. */
function parseCidrs(cidrs: readonly string[]): Cidr[] {
  return cidrs.map((c): Cidr => {
    const [address, bits] = ipaddr.parseCIDR(c);
    if (address instanceof ipaddr.IPv6 && address.isIPv4MappedAddress() && bits >= 96)
      return [address.toIPv4Address(), bits - 96];
    return [address, bits];
  });
}

/**
 * The range name when `address` may not be reached, else undefined. Only ipaddr.js's `unicast` (everything it
 * does not name as special) is public; loopback, private, linkLocal, uniqueLocal, unspecified, carrierGradeNat,
 * multicast, broadcast, reserved, and the IPv6 ranges that embed an IPv4 address (NAT64, 6to4, Teredo) are not.
 */
function refusedRange(address: string, allowed: readonly Cidr[]): string | undefined {
  if (!ipaddr.isValid(address)) return 'unparseable';
  const ip = normalize(ipaddr.parse(address));
  const range = ip.range();
  if (range === 'unicast') return undefined;
  const permitted = allowed.some(([net, bits]) => net.kind() === ip.kind() && ip.match(net, bits));
  return permitted ? undefined : range;
}

/** Names that resolve to loopback without asking DNS (RFC 6761). */
const LOOPBACK_NAME = /^(localhost|[^/]*\.localhost)\.?$/i;

/**
 * Checks a callback URL at registration: http(s) only, no credentials, and a host that is not a literal address
 * (or a `localhost` name) in a refused range. Returns an error message, or undefined when acceptable. A host name
 * passes here; whether its addresses may be reached is decided at each connection.
 */
export function checkWebhookUrl(url: string, allowedCidrs: readonly string[]): string | undefined {
  const shape = checkUrlShape(url);
  if (shape) return shape;
  const host = hostOf(new URL(url));
  const allowed = parseCidrs(allowedCidrs);
  if (LOOPBACK_NAME.test(host)) {
    const permitted = ['127.0.0.1', '::1'].some((a) => refusedRange(a, allowed) === undefined);
    return permitted ? undefined : `host '${host}' is a loopback name; allow it with WEBHOOK_ALLOWED_CIDRS`;
  }
  if (net.isIP(host)) {
    const range = refusedRange(host, allowed);
    if (range) return new WebhookAddressRefusedError(host, host, range).message;
  }
  return undefined;
}

/**
 * What every delivery checks again before connecting, whatever the host: http(s), no credentials, a host. The
 * addresses are judged by checkLiteralHost and guardedLookup, so a `localhost` name meets the same DNS check as
 * any other name.
 */
export function checkUrlShape(url: string): string | undefined {
  if (!URL.canParse(url)) return 'not a valid URL';
  const parsed = new URL(url);
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    return `only http and https URLs (got ${parsed.protocol})`;
  if (parsed.username || parsed.password) return 'credentials are not allowed in the URL';
  if (!hostOf(parsed)) return 'the URL has no host';
  return undefined;
}

/** The URL's host without the brackets of an IPv6 literal. */
export function hostOf(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, '$1');
}

/**
 * Throws WebhookAddressRefusedError if `host` is an IP literal in a refused range. Node connects to a literal
 * without calling `lookup`, so deliveries call this before connecting.
 */
export function checkLiteralHost(host: string, allowedCidrs: readonly string[]): void {
  if (!net.isIP(host)) return;
  const range = refusedRange(host, parseCidrs(allowedCidrs));
  if (range) throw new WebhookAddressRefusedError(host, host, range);
}

/**
 * A `lookup` for http.request / https.request that resolves every address of the host and fails the connection
 * with WebhookAddressRefusedError if any of them may not be reached. Checking all of them (not just the one
 * connected to) keeps a name with one public and one internal record from reaching the internal one on a retry
 * or a Happy Eyeballs fallback. The addresses checked are the addresses connected to: nothing resolves twice.
 */
export function guardedLookup(allowedCidrs: readonly string[]): net.LookupFunction {
  const allowed = parseCidrs(allowedCidrs);
  return (hostname, options, callback) => {
    dns.lookup(hostname, { family: options.family, hints: options.hints, all: true }, (err, addresses) => {
      if (err) return callback(err, []);
      if (addresses.length === 0)
        return callback(Object.assign(new Error(`no address for '${hostname}'`), { code: 'ENOTFOUND' }), []);
      for (const { address } of addresses) {
        const range = refusedRange(address, allowed);
        if (range) return callback(new WebhookAddressRefusedError(hostname, address, range), []);
      }
      if (options.all) return callback(null, addresses);
      const [first] = addresses;
      return callback(null, first!.address, first!.family);
    });
  };
}
