/**
 * Issue 7, defect 9: liveness by PID is wrong across PID namespaces that
 * share /dev/shm and /tmp. Two owners, each in its own PID namespace (both
 * are PID 1 there), must never remove each other's live files, and each must
 * remove the other's once that owner is killed with -9.
 *
 * Uses only the API that existed before lock files, so it also runs against
 * commit 69a4b0d (where it fails). There, `sweepStaleIsolations` ignores its
 * scope and sweeps everything: run that check only inside a private mount
 * namespace (private tmpfs on /dev/shm and /tmp/rmp), never on the shared
 * machine.
 */
import { assert, assertEquals } from "./support/assert.ts";
import { leftovers, sweepStaleIsolations } from "../data/isolation.ts";
import { canUnsharePid, existing, Owner } from "./support/owner.ts";

const lockFile = (root: string) => `${root.replace(/\/+$/, "")}.lock`;
// Typed so that the test also checks against 69a4b0d, whose sweeper takes no
// scope.
const sweep = sweepStaleIsolations as (
  options: { prefixes: string[] },
) => number;

Deno.test({
  name:
    "owners in separate PID namespaces never remove each other's live files, and do once one is killed with -9",
  ignore: !canUnsharePid(),
  async fn() {
    const owners: Owner[] = [];
    const start = async () => {
      const owner = await Owner.start("context", { pidNamespace: true });
      owners.push(owner);
      return owner;
    };
    try {
      const a = await start();
      const b = await start();
      // Both are (nearly) PID 1 in their namespaces: the same PID in both
      // names, and one that is alive in every namespace.
      assert(a.info.pid < 10 && b.info.pid < 10, JSON.stringify([a, b]));
      assert(a.info.hostPid !== b.info.hostPid);
      const prefixes = [a.info.prefix, b.info.prefix];
      const filesA = leftovers(a.info);
      const filesB = leftovers(b.info);
      for (const files of [filesA, filesB]) {
        assert(files.some((f) => f.startsWith("/dev/shm/")), files.join());
        assert(files.some((f) => f.startsWith("/tmp/rmp/")), files.join());
      }

      // Everyone sweeps: both owners and this process (the host namespace).
      assertEquals(await a.sweep(prefixes), 0);
      assertEquals(await b.sweep(prefixes), 0);
      assertEquals(sweep({ prefixes }), 0);
      assertEquals(existing(filesA), filesA);
      assertEquals(existing(filesB), filesB);

      // A dies: B's sweep removes all of A's files, none of its own.
      await a.kill9();
      assert((await b.sweep(prefixes)) > 0, "B removed A's files");
      assertEquals(leftovers(a.info), []);
      assertEquals(existing([lockFile(a.info.root)]), []);
      assertEquals(existing(filesB), filesB);

      // And the other way round, with a new owner C in a third namespace.
      const c = await start();
      const filesC = leftovers(c.info);
      const all = [...prefixes, c.info.prefix];
      assertEquals(await c.sweep(all), 0);
      assertEquals(existing(filesB), filesB);
      await b.kill9();
      assert((await c.sweep(all)) > 0, "C removed B's files");
      assertEquals(leftovers(b.info), []);
      assertEquals(existing([lockFile(b.info.root)]), []);
      assertEquals(existing(filesC), filesC);
    } finally {
      for (const owner of owners) await owner.close();
      sweep({ prefixes: owners.map((o) => o.info.prefix) });
    }
  },
});
