// Pieces several screens share.
import { useEffect, useState } from "react";
import { api, ok, type Collection } from "./api";

/** The caller's collections and the one chosen (the first until the operator picks another). */
export function useCollectionChoice(onError: (message: string) => void) {
  const [collections, setCollections] = useState<Collection[]>([]);
  const [collectionId, setCollectionId] = useState("");
  useEffect(() => {
    api.GET("/v1/collections").then((r) => {
      const list = ok(r).collections;
      setCollections(list);
      if (list[0]) setCollectionId((c) => c || list[0].id);
    }, (e: Error) => onError(e.message));
  }, []);
  return { collections, collectionId, setCollectionId };
}

/** A select of the collections. */
export function CollectionSelect({ id, collections, value, onChange }: {
  id: string; collections: Collection[]; value: string; onChange: (id: string) => void;
}) {
  return (
    <>
      <label htmlFor={id}>Collection</label>
      <select id={id} value={value} onChange={(e) => onChange(e.target.value)}>
        {collections.map((c) => <option key={c.id} value={c.id}>{c.name}</option>)}
      </select>
    </>
  );
}

/** A group of checkboxes choosing some of `options`. */
export function Checks<T extends string>({ legend, options, chosen, onChange, inline = false }: {
  legend: string; options: readonly T[]; chosen: T[]; onChange: (chosen: T[]) => void; inline?: boolean;
}) {
  return (
    <fieldset>
      <legend>{legend}</legend>
      <div className={inline ? "days" : undefined}>
        {options.map((option) => (
          <label key={option} className="check">
            <input type="checkbox" checked={chosen.includes(option)}
              onChange={(e) => onChange(e.target.checked ? [...chosen, option] : chosen.filter((x) => x !== option))} />
            {option}
          </label>
        ))}
      </div>
    </fieldset>
  );
}
