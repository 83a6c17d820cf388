/**
 * The StoreLookups of a store whose index lives in this process as IndexMaps (the folder store,
 * the memory store): each lookup answers from the maps, brought up to date first. One place for
 * them, where each store had its own copy of the same forwarding.
 */
import type { IndexMaps, PrincipalRevocation, StoreLookups } from './store.js';

export abstract class IndexMapLookups implements StoreLookups {
  /** the index by key, up to date with what the store holds */
  protected abstract indexMaps(): IndexMaps;
  /** the last revocation of `principal` (revoke --principal), or undefined */
  protected abstract revokedPrincipal(principal: string): PrincipalRevocation | undefined;

  // properties, not methods: callers may hand a lookup on unbound (and a transaction spreads them)
  readonly lookup: StoreLookups['lookup'] = async (serial) => this.indexMaps().lookup(serial);
  readonly successorOf: StoreLookups['successorOf'] = async (serial) => this.indexMaps().successorOf(serial);
  readonly delegatedFrom: StoreLookups['delegatedFrom'] = async (serial) => this.indexMaps().delegatedFrom(serial);
  readonly exchangedWith: StoreLookups['exchangedWith'] = async (serial) => this.indexMaps().exchangedWith(serial);
  readonly activeRevocations: StoreLookups['activeRevocations'] = async (now) => this.indexMaps().activeRevocations(now);
  readonly listIssued: StoreLookups['listIssued'] = async (q) => this.indexMaps().listIssued(q);
  readonly principalRevocation: StoreLookups['principalRevocation'] = async (principal) => this.revokedPrincipal(principal);

  /** the lookups alone, for a transaction's view of the store */
  protected lookups(): StoreLookups {
    const { lookup, successorOf, delegatedFrom, exchangedWith, activeRevocations, listIssued, principalRevocation } = this;
    return { lookup, successorOf, delegatedFrom, exchangedWith, activeRevocations, listIssued, principalRevocation };
  }
}
