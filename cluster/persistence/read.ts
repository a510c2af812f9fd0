/**
 * Reading a DATA_DIR's tables files into a store: the snapshot, then each change log after it,
 * every block checked, rows applied as this node's own ("restore"). Done on a worker thread at
 * start (restore-worker.ts: the event loop stays free, and the read runs beside the rest of the
 * start), or here when the store already holds rows.
 */
import { DictionaryMapping, type ClusterStore } from "../store";
import { Slicer } from "../slicer";
import { FileKind, type HeaderMeta } from "./blocks";
import { readChain, refusal, type ChainEnd, type Where } from "./chain";
import { readEntries, type EntryTarget } from "./entries";

export interface ReadOutcome {
  header: HeaderMeta;
  kind: FileKind;
  end: ChainEnd | undefined;
  /** the files' dictionary ids are the store's (it was empty): new commits can go on in the same log */
  identity: boolean;
  /** how far the files' dictionary goes: where the log's next dictionary entry starts */
  dictionary: { shapes: number; strings: number; writers: number };
  rows: number;
  refused: number;
  meta: Array<[string, string]>;
}

/** Read the files into `store`; yields to the event loop every `sliceMs` (undefined: never, on a worker). */
export async function readTables(
  store: ClusterStore,
  dir: string,
  clusterName: string,
  where: Where,
  sliceMs: number | undefined,
): Promise<ReadOutcome> {
  const mapping = new DictionaryMapping(store.dictionary);
  const meta = new Map<string, string>();
  const target: EntryTarget = { store, mapping, meta, rows: 0, refused: 0, fresh: new Map() };
  const slicer = sliceMs === undefined ? undefined : new Slicer(sliceMs);
  const { header, kind, end } = await readChain(dir, clusterName, where, {
    file: (fileKind, fileHeader) => {
      // only a snapshot holds each key once (a backup has its logs after it)
      if (fileKind !== FileKind.Snapshot) target.fresh = undefined;
      const counts = (fileHeader as HeaderMeta & { tables?: Record<string, number> }).tables;
      if (fileKind !== FileKind.Log && counts)
        for (const [table, n] of Object.entries(counts)) store.expectRows(table, n);
    },
    entries: async (block, file) => {
      try {
        readEntries(block.buf, block.start, block.end, target);
      } catch (error) {
        throw refusal(error, where, file);
      }
      if (slicer?.over()) await slicer.pause();
    },
  });
  store.restored();
  return {
    header,
    kind,
    end,
    identity: mapping.identity,
    dictionary: {
      shapes: mapping.theirs.shapes.length,
      strings: mapping.theirs.strings.length,
      writers: mapping.theirs.writers.length,
    },
    rows: target.rows,
    refused: target.refused,
    meta: [...meta],
  };
}
