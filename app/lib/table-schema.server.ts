/**
 * A table's schema for the cluster: zod's `parse` for what arrives by gossip, and beside it a
 * check compiled from the same zod schema that says, without building anything, whether `parse`
 * would give back the very value it was handed. A catch-up checks millions of rows: zod costs
 * ~4 µs a row, the compiled check a tenth of a microsecond, and a row that passes is kept as it
 * came. Only the parts of zod the app's tables use are compiled (objects, strings, numbers,
 * booleans, arrays, optional, nullable, literals, enums, defaults, transforms); a schema using
 * anything else gets no check, so every row goes through `parse`.
 *
 * A transform at the end of a table's schema must only reshape (return the input's fields
 * unchanged, as the app's do to get objects of one fixed shape): the check skips it.
 */
import { z } from "zod";
import type { Schema, ValueSpec } from "#cluster";

type Check = (value: unknown) => boolean;

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;

/** A primitive node zod would give back unchanged when it accepts it. */
function primitive(schema: z.ZodTypeAny, ok: Check): Check {
  return (v) => ok(v) && schema.safeParse(v).success;
}

function compileString(schema: z.ZodString): Check | undefined {
  let min = 0;
  let max = Infinity;
  const patterns: RegExp[] = [];
  for (const check of schema._def.checks) {
    if (check.kind === "min") min = Math.max(min, check.value);
    else if (check.kind === "max") max = Math.min(max, check.value);
    else if (check.kind === "length") {
      min = Math.max(min, check.value);
      max = Math.min(max, check.value);
    } else if (check.kind === "regex")
      patterns.push(new RegExp(check.regex.source, check.regex.flags.replace("g", "")));
    // trim and case changes alter the value; other formats are left to zod
    else if (check.kind === "trim" || check.kind === "toLowerCase" || check.kind === "toUpperCase") return undefined;
    else return primitive(schema, (v) => typeof v === "string");
  }
  return (v) => typeof v === "string" && v.length >= min && v.length <= max && patterns.every((p) => p.test(v));
}

function compileNumber(schema: z.ZodNumber): Check | undefined {
  let int = false;
  let min = -Infinity;
  let minInclusive = true;
  let max = Infinity;
  let maxInclusive = true;
  for (const check of schema._def.checks) {
    if (check.kind === "int") int = true;
    else if (check.kind === "min") {
      min = check.value;
      minInclusive = check.inclusive;
    } else if (check.kind === "max") {
      max = check.value;
      maxInclusive = check.inclusive;
    } else if (check.kind === "finite") continue;
    else return primitive(schema, (v) => typeof v === "number");
  }
  return (v) =>
    typeof v === "number" &&
    Number.isFinite(v) &&
    (!int || Number.isInteger(v)) &&
    (minInclusive ? v >= min : v > min) &&
    (maxInclusive ? v <= max : v < max);
}

/** The compiled check of one node, or undefined when it uses something not compiled. */
function compile(schema: z.ZodTypeAny): Check | undefined {
  const def = schema._def as { typeName: z.ZodFirstPartyTypeKind };
  switch (def.typeName) {
    case z.ZodFirstPartyTypeKind.ZodString:
      return compileString(schema as z.ZodString);
    case z.ZodFirstPartyTypeKind.ZodNumber:
      return compileNumber(schema as z.ZodNumber);
    case z.ZodFirstPartyTypeKind.ZodBoolean:
      return (v) => typeof v === "boolean";
    case z.ZodFirstPartyTypeKind.ZodNull:
      return (v) => v === null;
    case z.ZodFirstPartyTypeKind.ZodLiteral: {
      const value = (schema as z.ZodLiteral<unknown>)._def.value;
      return (v) => v === value;
    }
    case z.ZodFirstPartyTypeKind.ZodEnum: {
      const values = new Set<unknown>((schema as z.ZodEnum<[string, ...string[]]>)._def.values);
      return (v) => values.has(v);
    }
    case z.ZodFirstPartyTypeKind.ZodOptional: {
      const inner = compile((schema as z.ZodOptional<z.ZodTypeAny>)._def.innerType);
      return inner && ((v) => v === undefined || inner(v));
    }
    case z.ZodFirstPartyTypeKind.ZodNullable: {
      const inner = compile((schema as z.ZodNullable<z.ZodTypeAny>)._def.innerType);
      return inner && ((v) => v === null || inner(v));
    }
    case z.ZodFirstPartyTypeKind.ZodDefault: {
      // a missing value would be filled in: not "given back unchanged"
      const inner = compile((schema as z.ZodDefault<z.ZodTypeAny>)._def.innerType);
      return inner && ((v) => v !== undefined && inner(v));
    }
    case z.ZodFirstPartyTypeKind.ZodEffects: {
      const effect = (schema as z.ZodEffects<z.ZodTypeAny>)._def.effect;
      if (effect.type !== "transform") return undefined;
      return compile((schema as z.ZodEffects<z.ZodTypeAny>)._def.schema);
    }
    case z.ZodFirstPartyTypeKind.ZodArray: {
      const arrayDef = (schema as z.ZodArray<z.ZodTypeAny>)._def;
      const item = compile(arrayDef.type);
      if (!item) return undefined;
      const min = Math.max(arrayDef.minLength?.value ?? 0, arrayDef.exactLength?.value ?? 0);
      const max = Math.min(arrayDef.maxLength?.value ?? Infinity, arrayDef.exactLength?.value ?? Infinity);
      return (v) => Array.isArray(v) && v.length >= min && v.length <= max && v.every(item);
    }
    case z.ZodFirstPartyTypeKind.ZodObject: {
      const object = schema as z.ZodObject<z.ZodRawShape>;
      if (object._def.unknownKeys !== "strip" || !(object._def.catchall instanceof z.ZodNever)) return undefined;
      const fields: Array<[string, Check]> = [];
      for (const [name, field] of Object.entries(object.shape)) {
        const check = compile(field);
        if (!check) return undefined;
        fields.push([name, check]);
      }
      const known = new Set(fields.map(([name]) => name));
      return (v) => {
        if (!isPlainObject(v)) return false;
        for (const [name, check] of fields) if (!check(v[name])) return false;
        // a field the schema does not know would be dropped by parse
        for (const name in v) if (!known.has(name)) return false;
        return true;
      };
    }
    default:
      return undefined;
  }
}

/**
 * The same parts of zod as data, for the cluster to check rows in their binary form (a catch-up's)
 * without building them; undefined when the schema uses anything else. A field with a default is
 * described as required: a row without it goes the slow way, through `parse`.
 */
function describe(schema: z.ZodTypeAny): ValueSpec | undefined {
  const def = schema._def as { typeName: z.ZodFirstPartyTypeKind };
  switch (def.typeName) {
    case z.ZodFirstPartyTypeKind.ZodString: {
      const spec: Extract<ValueSpec, { type: "string" }> = { type: "string", patterns: [] };
      for (const check of (schema as z.ZodString)._def.checks) {
        if (check.kind === "min") spec.min = Math.max(spec.min ?? 0, check.value);
        else if (check.kind === "max") spec.max = Math.min(spec.max ?? Infinity, check.value);
        else if (check.kind === "length") {
          spec.min = check.value;
          spec.max = check.value;
        } else if (check.kind === "regex") spec.patterns!.push(check.regex);
        else return undefined;
      }
      return spec;
    }
    case z.ZodFirstPartyTypeKind.ZodNumber: {
      const spec: Extract<ValueSpec, { type: "number" }> = { type: "number" };
      for (const check of (schema as z.ZodNumber)._def.checks) {
        if (check.kind === "int") spec.int = true;
        else if (check.kind === "min") {
          spec.min = check.value;
          spec.minExclusive = !check.inclusive;
        } else if (check.kind === "max") {
          spec.max = check.value;
          spec.maxExclusive = !check.inclusive;
        } else if (check.kind !== "finite") return undefined;
      }
      return spec;
    }
    case z.ZodFirstPartyTypeKind.ZodBoolean:
      return { type: "boolean" };
    case z.ZodFirstPartyTypeKind.ZodNull:
      return { type: "null" };
    case z.ZodFirstPartyTypeKind.ZodLiteral: {
      const value = (schema as z.ZodLiteral<unknown>)._def.value;
      return value === null || ["string", "number", "boolean"].includes(typeof value)
        ? { type: "literal", value: value as string | number | boolean | null }
        : undefined;
    }
    case z.ZodFirstPartyTypeKind.ZodEnum:
      return { type: "enum", values: [...(schema as z.ZodEnum<[string, ...string[]]>)._def.values] };
    case z.ZodFirstPartyTypeKind.ZodOptional: {
      const of = describe((schema as z.ZodOptional<z.ZodTypeAny>)._def.innerType);
      return of && { type: "optional", of };
    }
    case z.ZodFirstPartyTypeKind.ZodNullable: {
      const of = describe((schema as z.ZodNullable<z.ZodTypeAny>)._def.innerType);
      return of && { type: "nullable", of };
    }
    case z.ZodFirstPartyTypeKind.ZodDefault:
      return describe((schema as z.ZodDefault<z.ZodTypeAny>)._def.innerType);
    case z.ZodFirstPartyTypeKind.ZodEffects: {
      const effects = schema as z.ZodEffects<z.ZodTypeAny>;
      return effects._def.effect.type === "transform" ? describe(effects._def.schema) : undefined;
    }
    case z.ZodFirstPartyTypeKind.ZodArray: {
      const arrayDef = (schema as z.ZodArray<z.ZodTypeAny>)._def;
      const of = describe(arrayDef.type);
      if (!of) return undefined;
      return {
        type: "array",
        of,
        min: Math.max(arrayDef.minLength?.value ?? 0, arrayDef.exactLength?.value ?? 0),
        max: Math.min(arrayDef.maxLength?.value ?? Infinity, arrayDef.exactLength?.value ?? Infinity),
      };
    }
    case z.ZodFirstPartyTypeKind.ZodObject: {
      const object = schema as z.ZodObject<z.ZodRawShape>;
      if (object._def.unknownKeys !== "strip" || !(object._def.catchall instanceof z.ZodNever)) return undefined;
      const fields: Record<string, ValueSpec> = {};
      for (const [name, field] of Object.entries(object.shape)) {
        const spec = describe(field);
        if (!spec) return undefined;
        fields[name] = spec;
      }
      return { type: "object", fields };
    }
    default:
      return undefined;
  }
}

/** The schema a table of the cluster is opened with: zod's parse, and the compiled checks where they compile. */
export function tableSchema<T extends z.ZodTypeAny>(schema: T): Schema<z.output<T>> {
  const check = compile(schema);
  const spec = describe(schema);
  return {
    parse: (input) => schema.parse(input),
    ...(check ? { check } : {}),
    ...(spec ? { binarySpec: () => spec } : {}),
  };
}
