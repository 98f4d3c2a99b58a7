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
    /** The range the address falls in: ipaddr.js's name (loopback, private, 6to4, ...) or notGlobalUnicast. */
    readonly range: string,
    /** The IPv4 address a connection to an IPv4-mapped or NAT64 address reaches, which was judged instead. */
    readonly embedded?: string,
  ) {
    const where = host === address ? `'${host}' is` : `'${host}' resolves to ${address}, which is`;
    super(
      `webhook host ${where} a ${range} address${embedded ? ` (IPv4 ${embedded})` : ''}; ` +
        'deliveries reach only public unicast addresses unless WEBHOOK_ALLOWED_CIDRS allows it',
    );
    this.name = 'WebhookAddressRefusedError';
  }
}

type Address = ipaddr.IPv4 | ipaddr.IPv6;
type Cidr = [Address, number];

/** The only IPv6 block allocated for global unicast: everything outside it is local, special or unassigned. */
const GLOBAL_UNICAST_V6: Cidr = ipaddr.parseCIDR('2000::/3');
/** NAT64's well-known prefix (RFC 6052): the gateway connects to the IPv4 address in the last 32 bits. */
const NAT64_WELL_KNOWN: Cidr = ipaddr.parseCIDR('64:ff9b::/96');

/**
 * The IPv4 address a connection to `address` reaches, where it embeds one that the path translates to, so that
 * address is judged instead:
 * - IPv4-mapped (::ffff:a.b.c.d): the socket itself connects over IPv4, so ::ffff:127.0.0.1 is loopback.
 * - NAT64 (64:ff9b::/96): on an IPv6-only network DNS64 gives every IPv4-only receiver such an address, and the
 *   gateway connects to the embedded IPv4 address, which may be private.
 */
function embeddedIPv4(address: Address): ipaddr.IPv4 | undefined {
  if (!(address instanceof ipaddr.IPv6)) return undefined;
  if (address.isIPv4MappedAddress()) return address.toIPv4Address();
  if (address.match(NAT64_WELL_KNOWN)) return new ipaddr.IPv4(address.toByteArray().slice(12));
  return undefined;
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

const within = (ip: Address, cidrs: readonly Cidr[]) =>
  cidrs.some(([net, bits]) => net.kind() === ip.kind() && ip.match(net, bits));

/**
 * Why `address` may not be reached, or undefined when it may: inside an allowed CIDR (the address itself, or the
 * IPv4 address it embeds), or public. IPv4 is public when ipaddr.js names it `unicast` (everything it does not name
 * as special). IPv6 is public only inside 2000::/3 and named `unicast` there, which refuses, among others:
 * - ::/96 (IPv4-compatible) and ::ffff:0:0:0/96 (SIIT): some stacks still route them to the IPv4 address inside.
 * - 64:ff9b:1::/48 (local-use NAT64): where its IPv4 address sits is the operator's choice; allow it by CIDR.
 * - 2002::/16 (6to4): tunnels to the IPv4 address in bits 16-48; deprecated (RFC 7526), so no receiver needs it.
 * - 2001::/32 (Teredo): tunnels through the IPv4 addresses it embeds; a client's address, never a receiver's.
 * - The rest of 2001::/23 (benchmarking, ORCHID, AMT, ...): protocol assignments, not hosts.
 * - 2001:db8::/32 and 3fff::/20 (documentation): never routed, so only an internal network would answer.
 * - fc00::/7, fe80::/10, fec0::/10, ff00::/8, ::1, ::, 100::/64: unique/link/site-local, multicast and the like.
 */
function refusal(address: string, allowed: readonly Cidr[]): { range: string; embedded?: string } | undefined {
  if (!ipaddr.isValid(address)) return { range: 'unparseable' };
  const raw = ipaddr.parse(address);
  const v4 = embeddedIPv4(raw);
  const ip = v4 ?? raw;
  if (within(raw, allowed) || within(ip, allowed)) return undefined;
  const range = ip.range();
  const embedded = v4 ? { embedded: v4.toString() } : {};
  if (ip instanceof ipaddr.IPv4) return range === 'unicast' ? undefined : { range, ...embedded };
  if (!ip.match(GLOBAL_UNICAST_V6)) return { range: range === 'unicast' ? 'notGlobalUnicast' : range };
  return range === 'unicast' ? undefined : { range };
}

/** The error of a refused address, or undefined when it may be reached. */
function refusedError(host: string, address: string, allowed: readonly Cidr[]): WebhookAddressRefusedError | undefined {
  const refused = refusal(address, allowed);
  return refused && new WebhookAddressRefusedError(host, address, refused.range, refused.embedded);
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
    const permitted = ['127.0.0.1', '::1'].some((a) => refusal(a, allowed) === undefined);
    return permitted ? undefined : `host '${host}' is a loopback name; allow it with WEBHOOK_ALLOWED_CIDRS`;
  }
  return net.isIP(host) ? refusedError(host, host, allowed)?.message : undefined;
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
  const refused = refusedError(host, host, parseCidrs(allowedCidrs));
  if (refused) throw refused;
}

/** Resolves every address of a name, as dns.lookup with `all: true` does (tests pass their own answers). */
export type ResolveAll = (
  hostname: string,
  options: Pick<dns.LookupOptions, 'family' | 'hints'>,
  callback: (err: NodeJS.ErrnoException | null, addresses: dns.LookupAddress[]) => void,
) => void;

const resolveAll: ResolveAll = (hostname, { family, hints }, callback) =>
  dns.lookup(hostname, { family, hints, all: true }, callback);

/**
 * A `lookup` for http.request / https.request that resolves every address of the host and fails the connection
 * with WebhookAddressRefusedError if any of them may not be reached. Checking all of them (not just the one
 * connected to) keeps a name with one public and one internal record from reaching the internal one on a retry
 * or a Happy Eyeballs fallback. The addresses checked are the addresses connected to: nothing resolves twice.
 * Every address meets the rules a literal host meets (refusal), whatever form it resolves in.
 */
export function guardedLookup(allowedCidrs: readonly string[], resolve: ResolveAll = resolveAll): net.LookupFunction {
  const allowed = parseCidrs(allowedCidrs);
  return (hostname, options, callback) => {
    resolve(hostname, { family: options.family, hints: options.hints }, (err, addresses) => {
      if (err) return callback(err, []);
      if (addresses.length === 0)
        return callback(Object.assign(new Error(`no address for '${hostname}'`), { code: 'ENOTFOUND' }), []);
      for (const { address } of addresses) {
        const refused = refusedError(hostname, address, allowed);
        if (refused) return callback(refused, []);
      }
      if (options.all) return callback(null, addresses);
      const [first] = addresses;
      return callback(null, first!.address, first!.family);
    });
  };
}
