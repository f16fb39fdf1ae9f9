/** What the server answers (SPEC §2), as read-only values with camelCase fields. */

/** The SPEC JSON of an object (upload and list answers). */
export interface ObjectJson {
  id: string;
  tenant_id: string;
  namespace: string;
  key: string;
  content_hash: string;
  size_bytes: number;
  storage_class: string;
  content_type: string;
  created_at: string;
}

/** One stored object version, as upload and list answer it. */
export class ObjectInfo {
  readonly id: string;
  readonly tenantId: string;
  readonly namespace: string;
  readonly key: string;
  /** `sha256:<hex>` */
  readonly contentHash: string;
  readonly sizeBytes: number;
  readonly storageClass: string;
  readonly contentType: string;
  readonly createdAt: Date;

  constructor(fields: Omit<ObjectInfo, "sha256" | "etag" | "toJSON">) {
    this.id = fields.id;
    this.tenantId = fields.tenantId;
    this.namespace = fields.namespace;
    this.key = fields.key;
    this.contentHash = fields.contentHash;
    this.sizeBytes = fields.sizeBytes;
    this.storageClass = fields.storageClass;
    this.contentType = fields.contentType;
    this.createdAt = fields.createdAt;
  }

  /** The hex digest, without `sha256:`. */
  get sha256(): string {
    return stripPrefix(this.contentHash);
  }

  /** The ETag as the server sends it (quoted), for `ifMatch`. */
  get etag(): string {
    return `"${this.contentHash}"`;
  }

  static fromJson(data: ObjectJson): ObjectInfo {
    return new ObjectInfo({
      id: String(data.id),
      tenantId: String(data.tenant_id),
      namespace: String(data.namespace),
      key: String(data.key),
      contentHash: String(data.content_hash),
      sizeBytes: Number(data.size_bytes),
      storageClass: String(data.storage_class),
      contentType: String(data.content_type),
      createdAt: new Date(String(data.created_at)),
    });
  }

  /** The SPEC JSON (snake_case), also what `JSON.stringify` writes. */
  toJSON(): ObjectJson {
    return {
      id: this.id,
      tenant_id: this.tenantId,
      namespace: this.namespace,
      key: this.key,
      content_hash: this.contentHash,
      size_bytes: this.sizeBytes,
      storage_class: this.storageClass,
      content_type: this.contentType,
      created_at: this.createdAt.toISOString().replace(/\.000Z$/, "Z"),
    };
  }
}

/** The headers of a download (HEAD, or GET before its body). */
export class ObjectHead {
  readonly id: string;
  /** `sha256:<hex>`, from the ETag. */
  readonly contentHash: string;
  /** Of the whole object, also when a range was asked. */
  readonly sizeBytes: number;
  readonly contentType: string;
  readonly storageClass: string;
  readonly lastModified: Date | null;

  constructor(fields: Omit<ObjectHead, "sha256" | "toJSON">) {
    this.id = fields.id;
    this.contentHash = fields.contentHash;
    this.sizeBytes = fields.sizeBytes;
    this.contentType = fields.contentType;
    this.storageClass = fields.storageClass;
    this.lastModified = fields.lastModified;
  }

  get sha256(): string {
    return stripPrefix(this.contentHash);
  }

  static fromHeaders(headers: Headers): ObjectHead {
    const contentRange = headers.get("content-range");
    const size =
      contentRange !== null && contentRange.includes("/")
        ? Number(contentRange.slice(contentRange.lastIndexOf("/") + 1))
        : Number(headers.get("content-length") ?? "0");
    const modified = headers.get("last-modified");
    return new ObjectHead({
      id: headers.get("x-object-id") ?? "",
      contentHash: (headers.get("etag") ?? "").replace(/^"|"$/g, ""),
      sizeBytes: size,
      contentType: headers.get("content-type") ?? "application/octet-stream",
      storageClass: headers.get("x-storage-class") ?? "",
      lastModified: modified ? new Date(modified) : null,
    });
  }

  toJSON(): Record<string, string | number | null> {
    return {
      id: this.id,
      content_hash: this.contentHash,
      size_bytes: this.sizeBytes,
      content_type: this.contentType,
      storage_class: this.storageClass,
      last_modified: this.lastModified ? this.lastModified.toISOString() : null,
    };
  }
}

export interface ClassUsage {
  readonly objects: number;
  readonly bytes: number;
  readonly monthlyCost: number;
}

/** `GET /v1/usage`: logical totals and the monthly cost per storage class. */
export interface Usage {
  readonly tenantId: string;
  readonly objects: number;
  readonly logicalBytes: number;
  readonly byStorageClass: Readonly<Record<string, ClassUsage>>;
  readonly monthlyCost: number;
  readonly currency: string;
  /** The answer's JSON as sent. */
  readonly raw: Readonly<Record<string, unknown>>;
}

interface UsageJson {
  tenant_id: string;
  objects: number;
  logical_bytes: number;
  by_storage_class: Record<string, { objects: number; bytes: number; monthly_cost: number }>;
  monthly_cost: number;
  currency: string;
}

export function usageFromJson(data: UsageJson): Usage {
  const byStorageClass: Record<string, ClassUsage> = {};
  for (const [name, c] of Object.entries(data.by_storage_class ?? {})) {
    byStorageClass[name] = {
      objects: Number(c.objects),
      bytes: Number(c.bytes),
      monthlyCost: Number(c.monthly_cost),
    };
  }
  return {
    tenantId: String(data.tenant_id),
    objects: Number(data.objects),
    logicalBytes: Number(data.logical_bytes),
    byStorageClass,
    monthlyCost: Number(data.monthly_cost),
    currency: String(data.currency),
    raw: data as unknown as Record<string, unknown>,
  };
}

/** `POST /v1/presign`: a URL for one method on one object until `expiresAt`. */
export interface PresignedUrl {
  /** Absolute: the server's public URL, or the client's base URL. */
  readonly url: string;
  readonly method: "GET" | "HEAD" | "PUT";
  readonly expiresAt: Date;
  /** The answer's JSON as sent. */
  readonly raw: Readonly<Record<string, unknown>>;
}

/** @internal */
export interface PresignedUrlJson {
  url: string;
  method: "GET" | "HEAD" | "PUT";
  expires_at: string;
}

/** @internal */
export function presignedUrlFromJson(data: PresignedUrlJson, baseUrl: string): PresignedUrl {
  const url = data.url.startsWith("/") ? baseUrl + data.url : data.url;
  return {
    url,
    method: data.method,
    expiresAt: new Date(data.expires_at),
    raw: data as unknown as Record<string, unknown>,
  };
}

/** `/health` or `/ready`: `ok` is true only on a 200 with status "ok". */
export interface Health {
  readonly ok: boolean;
  readonly status: string;
  readonly checks: Readonly<Record<string, string>>;
}

export function healthFrom(httpStatus: number, body: string): Health {
  let data: unknown;
  try {
    data = JSON.parse(body);
  } catch {
    data = {};
  }
  const record = isRecord(data) ? data : undefined;
  const status = record ? String(record["status"] ?? "unavailable") : "?";
  const checks: Record<string, string> = {};
  const rawChecks = record?.["checks"];
  if (isRecord(rawChecks)) {
    for (const [name, value] of Object.entries(rawChecks)) checks[name] = String(value);
  }
  return { ok: httpStatus === 200 && status === "ok", status, checks };
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function stripPrefix(contentHash: string): string {
  return contentHash.startsWith("sha256:") ? contentHash.slice(7) : contentHash;
}

/** Keys a listing with a delimiter rolled up (SPEC §8.4): every key starting with `prefix`. */
export class CommonPrefix {
  readonly prefix: string;

  constructor(prefix: string) {
    this.prefix = prefix;
  }

  toJSON(): { prefix: string } {
    return { prefix: this.prefix };
  }
}

/** The SPEC JSON of a listing page. */
export interface ListPageJson {
  items: ObjectJson[];
  common_prefixes?: string[];
  next_cursor?: string | null;
}

/** One page of a listing: items and (with a delimiter) common prefixes, each in key order. */
export class ListPage {
  readonly items: ObjectInfo[];
  readonly commonPrefixes: string[];
  /** `null` on the last page. */
  readonly nextCursor: string | null;

  constructor(items: ObjectInfo[], commonPrefixes: string[], nextCursor: string | null) {
    this.items = items;
    this.commonPrefixes = commonPrefixes;
    this.nextCursor = nextCursor;
  }

  static fromJson(data: ListPageJson): ListPage {
    return new ListPage(
      data.items.map((item) => ObjectInfo.fromJson(item)),
      (data.common_prefixes ?? []).map(String),
      data.next_cursor ?? null,
    );
  }

  /** Items and prefixes merged in key order (UTF-8 byte order). */
  entries(): (ObjectInfo | CommonPrefix)[] {
    const merged: (ObjectInfo | CommonPrefix)[] = [
      ...this.items,
      ...this.commonPrefixes.map((p) => new CommonPrefix(p)),
    ];
    const name = (entry: ObjectInfo | CommonPrefix): Buffer =>
      Buffer.from(entry instanceof CommonPrefix ? entry.prefix : entry.key, "utf8");
    return merged.sort((a, b) => Buffer.compare(name(a), name(b)));
  }
}
