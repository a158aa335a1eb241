// Public API of packages/: reading HLS and DASH manifests, and listing the package one leads to.
export { enumeratePackage, encodePath } from './enumerate.js'
export type { PackageFile, PackageListing, ReadBytes } from './enumerate.js'
export { manifestFormat, readManifest } from './manifest.js'
export type { Manifest, ManifestFormat } from './manifest.js'
export type { PackageReference } from './reference.js'
