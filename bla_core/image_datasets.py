"""Photo datasets on disk (paper §4.2): ``imagefolder:PATH``, ``catsdogs:PATH``, ``stanforddogs:PATH``, ``cub:PATH``.

Every image is converted to RGB (grayscale, palette, RGBA, CMYK and 16-bit files occur in the
wild; transparency is composited on white) and resized straight to the backbone's input size,
224×224 by default — no crop, so the 7×7 explanation grid covers the whole photo, as the stimulus
overlays show it. EXIF orientation is not applied, matching the pixels the generation stage draws on.

Files that cannot be decoded (zero-byte files, truncated or non-image data, as in Microsoft's
PetImages archive) are skipped and listed in ``DatasetSplits.skipped``; the decode check of a file
list is cached, so only the first load of a dataset pays for it.
"""
from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from .errors import BLAError
from .feature_cache import cache_root
from .files import write_json
from .image_sets import DatasetSplits, file_list_fingerprint, stratified_split

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
DEFAULT_SIZE = (224, 224)
RESAMPLING = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR,
              "nearest": Image.Resampling.NEAREST, "lanczos": Image.Resampling.LANCZOS}


def to_rgb(image: Image.Image) -> Image.Image:
    """An 8-bit RGB version of any Pillow image; transparent pixels become white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") else max(float(array.max()), 1.0)
        image = Image.fromarray((np.clip(array / top, 0, 1) * 255).round().astype(np.uint8), "L")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
    return image.convert("RGB")


def read_rgb(path: str) -> Image.Image:
    """Decode the whole file and convert it to RGB (raises on unreadable data)."""
    with Image.open(path) as image:
        image.load()
        return to_rgb(image)


def image_tensor(image: Image.Image, size: tuple[int, int], interpolation: str) -> torch.Tensor:
    """An RGB image resized straight to ``size`` = (height, width) as a float tensor (3, H, W) in [0, 1]."""
    resized = image.resize((size[1], size[0]), RESAMPLING.get(interpolation, Image.Resampling.BICUBIC))
    return torch.from_numpy(np.array(resized, dtype=np.uint8)).permute(2, 0, 1).float().div_(255.0)


@dataclass
class ImageFileSet(Dataset):
    """Images read from files (an :class:`~bla_core.image_sets.FileImageSet`): ``paths`` (absolute), ``labels``
    (N,), ``image_ids`` (path below the root).

    Items are (float tensor (3, H, W) in [0, 1] at ``size``, label).
    """

    paths: list[str]
    labels: torch.Tensor
    image_ids: list[str]
    size: tuple[int, int] = DEFAULT_SIZE
    interpolation: str = "bicubic"

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return image_tensor(read_rgb(self.paths[index]), self.size, self.interpolation), int(self.labels[index])

    def pil_image(self, index: int) -> Image.Image:
        """The photo in RGB at its own resolution."""
        return read_rgb(self.paths[index])

    def resized(self, size: tuple[int, int], interpolation: str) -> "ImageFileSet":
        """The same files delivered at another input size (a backbone's data config)."""
        return replace(self, size=tuple(size), interpolation=interpolation)


def decode_problem(path: str) -> str | None:
    """Why ``path`` cannot be used as an image, or None when it decodes."""
    try:
        if os.path.getsize(path) == 0:
            return "empty file"
        read_rgb(path)
    except Exception as error:  # Pillow raises many types for broken data
        return f"{type(error).__name__}: {error}".splitlines()[0][:200]
    return None


def unreadable_files(paths: list[str]) -> dict[str, str]:
    """{path: reason} for every file that does not decode; cached per file-list fingerprint."""
    cached = cache_root() / "scans" / f"{file_list_fingerprint(paths)}.json"
    if cached.is_file():
        return json.loads(cached.read_text())
    workers = min(os.cpu_count() or 1, 16)
    if len(paths) >= 256 and workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            problems = list(pool.map(decode_problem, paths, chunksize=64))
    else:
        problems = [decode_problem(p) for p in paths]
    bad = {path: reason for path, reason in zip(paths, problems) if reason is not None}
    cached.parent.mkdir(parents=True, exist_ok=True)
    write_json(cached, bad)
    return bad


def require_folder(argument: str | None, dataset: str, layout: str) -> Path:
    """The dataset root given after ``NAME:``, which must be an existing folder."""
    if not argument:
        raise BLAError(f"dataset {dataset!r} needs a path: {dataset}:PATH ({layout})")
    root = Path(argument).expanduser().resolve()
    if not root.is_dir():
        raise BLAError(f"dataset folder {argument} does not exist")
    return root


def require_file(path: Path, dataset: str) -> Path:
    if not path.is_file():
        raise BLAError(f"{dataset}: expected the file {path}, which does not exist")
    return path


def image_files(folder: Path) -> list[Path]:
    """Image files below ``folder`` (recursively, by extension), sorted by path."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def readable_name(folder_name: str) -> str:
    """``n02085782-Japanese_spaniel`` / ``001.Black_footed_Albatross`` → ``Japanese spaniel`` / ``Black footed Albatross``."""
    for separator in ("-", "."):
        head, sep, tail = folder_name.partition(separator)
        if sep and tail and (head.isdigit() or (head[:1] == "n" and head[1:].isdigit())):
            folder_name = tail
            break
    return folder_name.replace("_", " ")


@dataclass
class Listing:
    """Files of a dataset before the split: absolute path, id (path below the root), label, split flag."""

    root: Path
    files: list[Path]
    labels: list[int]
    is_train: list[bool] | None = None  # None: split by seed and fraction


def build_splits(listing: Listing, key: str, title: str, task: str, class_names: list[str], seed: int,
                 val_fraction: float, default_epochs: int) -> DatasetSplits:
    """Drop unreadable files, split (given or stratified by seed) and wrap both splits."""
    paths = [str(p) for p in listing.files]
    if not paths:
        raise BLAError(f"dataset {key!r} at {listing.root} holds no image files")
    bad = unreadable_files(paths)
    keep = np.array([p not in bad for p in paths])
    labels = np.asarray(listing.labels, dtype=np.int64)
    if not keep.any():
        raise BLAError(f"dataset {key!r} at {listing.root} leaves an empty train or validation split: "
                       f"none of its {len(paths)} image files could be read")
    if listing.is_train is None:
        kept = np.flatnonzero(keep)
        train_rel, val_rel = stratified_split(labels[kept], val_fraction, seed)
        train_idx, val_idx = kept[train_rel], kept[val_rel]
    else:
        flags = np.asarray(listing.is_train, dtype=bool)
        train_idx, val_idx = np.flatnonzero(flags & keep), np.flatnonzero(~flags & keep)
    if len(train_idx) == 0 or len(val_idx) == 0:
        raise BLAError(f"dataset {key!r} at {listing.root} leaves an empty train or validation split")

    def subset(idx: np.ndarray) -> ImageFileSet:
        return ImageFileSet(
            paths=[paths[i] for i in idx], labels=torch.from_numpy(labels[idx]),
            image_ids=[listing.files[i].relative_to(listing.root).as_posix() for i in idx],
        )

    return DatasetSplits(
        key=key, title=title, task=task, class_names=class_names, train=subset(train_idx), val=subset(val_idx),
        default_backbone="efficientnet_b0", gamma_factor=0.98, default_epochs=default_epochs,
        skipped=sorted(bad.items()), fixed_split=listing.is_train is not None,
    )


def task_for(class_names: list[str]) -> str:
    if len(class_names) <= 4:
        return f"tell {', '.join(class_names[:-1])} and {class_names[-1]} apart"
    return f"tell {len(class_names)} classes apart"


def load_imagefolder(argument: str | None, seed: int, val_fraction: float) -> DatasetSplits:
    """One sub-folder per class (its name is the class name), split stratified by seed and fraction."""
    root = require_folder(argument, "imagefolder", "one sub-folder of images per class")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if len(classes) < 2:
        raise BLAError(f"imagefolder {root} needs at least two class sub-folders, found {len(classes)}")
    files, labels = [], []
    for label, name in enumerate(classes):
        found = image_files(root / name)
        files += found
        labels += [label] * len(found)
    return build_splits(Listing(root, files, labels), "imagefolder", root.name, task_for(classes), classes,
                        seed, val_fraction, default_epochs=5)


def load_catsdogs(argument: str | None, seed: int, val_fraction: float) -> DatasetSplits:
    """Microsoft's PetImages (``Cat/``, ``Dog/``; the folder itself or its parent), dataset A of the paper."""
    root = require_folder(argument, "catsdogs", "the PetImages folder with Cat/ and Dog/")
    if not (root / "Cat").is_dir() and (root / "PetImages" / "Cat").is_dir():
        root = root / "PetImages"
    for name in ("Cat", "Dog"):
        if not (root / name).is_dir():
            raise BLAError(f"catsdogs: {root} has no {name}/ folder (expected Microsoft's PetImages layout)")
    cats, dogs = image_files(root / "Cat"), image_files(root / "Dog")
    listing = Listing(root, cats + dogs, [0] * len(cats) + [1] * len(dogs))
    return build_splits(listing, "catsdogs", "Cats and dogs", "tell cats from dogs", ["cat", "dog"],
                        seed, val_fraction, default_epochs=2)


def mat_strings(values: np.ndarray) -> list[str]:
    """The strings of a MATLAB cell array as scipy.io.loadmat returns it."""
    return [str(np.ravel(cell)[0]) for cell in np.ravel(values)]


def load_stanforddogs(argument: str | None, seed: int, val_fraction: float) -> DatasetSplits:
    """Stanford Dogs: ``Images/`` plus ``train_list.mat`` / ``test_list.mat`` (12,000 / 8,580), dataset B."""
    from scipy.io import loadmat

    root = require_folder(argument, "stanforddogs", "Images/ plus train_list.mat and test_list.mat")
    classes = sorted(d.name for d in (root / "Images").iterdir() if d.is_dir()) if (root / "Images").is_dir() else []
    if not classes:
        raise BLAError(f"stanforddogs: {root / 'Images'} holds no breed folders")
    files, labels, is_train = [], [], []
    for name, flag in (("train_list.mat", True), ("test_list.mat", False)):
        try:
            lists = loadmat(require_file(root / name, "stanforddogs"))
            relative = mat_strings(lists["file_list"])
        except (KeyError, ValueError, TypeError) as error:
            raise BLAError(f"stanforddogs: {root / name} is not a Stanford Dogs file list ({error})") from error
        for rel in relative:
            folder = rel.split("/")[0]
            if folder not in classes:
                raise BLAError(f"stanforddogs: {name} lists {rel}, whose breed folder is not in Images/")
            files.append(root / "Images" / rel)
            labels.append(classes.index(folder))
            is_train.append(flag)
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise BLAError(f"stanforddogs: {len(missing)} listed images do not exist (e.g. {missing[0]})")
    names = [readable_name(c) for c in classes]
    return build_splits(Listing(root / "Images", files, labels, is_train), "stanforddogs", "Dog breeds",
                        f"tell {len(names)} dog breeds apart", names, seed, val_fraction, default_epochs=5)


def read_table(path: Path) -> dict[str, str]:
    """``id value`` lines of a CUB metadata file as {id: value}."""
    table = {}
    for number, line in enumerate(require_file(path, "cub").read_text().splitlines(), 1):
        if line.strip():
            key, sep, value = line.strip().partition(" ")
            if not sep:
                raise BLAError(f"cub: line {number} of {path} is not 'id value': {line!r}")
            table[key] = value.strip()
    return table


def load_cub(argument: str | None, seed: int, val_fraction: float) -> DatasetSplits:
    """CUB-200-2011 (``images.txt``, ``image_class_labels.txt``, ``train_test_split.txt``, ``classes.txt``), dataset C."""
    root = require_folder(argument, "cub", "the CUB_200_2011 folder with images.txt and images/")
    if not (root / "images.txt").is_file() and (root / "CUB_200_2011" / "images.txt").is_file():
        root = root / "CUB_200_2011"
    images, labels = read_table(root / "images.txt"), read_table(root / "image_class_labels.txt")
    split, classes = read_table(root / "train_test_split.txt"), read_table(root / "classes.txt")
    class_ids = sorted(classes, key=int)
    index = {cid: i for i, cid in enumerate(class_ids)}
    try:
        order = sorted(images, key=int)
        files = [root / "images" / images[i] for i in order]
        label_list = [index[labels[i]] for i in order]
        is_train = [split[i] == "1" for i in order]
    except (KeyError, ValueError) as error:
        raise BLAError(f"cub: the metadata files in {root} disagree (image or class id {error})") from error
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise BLAError(f"cub: {len(missing)} listed images do not exist (e.g. {missing[0]})")
    names = [readable_name(classes[c]) for c in class_ids]
    return build_splits(Listing(root / "images", files, label_list, is_train), "cub", "Bird species",
                        f"tell {len(names)} bird species apart", names, seed, val_fraction, default_epochs=5)


IMAGE_LOADERS = {"imagefolder": load_imagefolder, "catsdogs": load_catsdogs,
                 "stanforddogs": load_stanforddogs, "cub": load_cub}
