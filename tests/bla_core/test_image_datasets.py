"""Photo dataset formats from fixture layouts, including the broken files real archives contain."""
import numpy as np
import pytest
import torch
from scipy.io import savemat

from bla_core.cli import main
from bla_core.datasets import load_dataset
from bla_core.errors import BLAError
from bla_core.image_datasets import to_rgb

from bla_photos import PHOTO_MODES, write_broken_files, write_photo


def test_imagefolder_converts_every_mode_to_rgb_224_and_skips_broken_files(photo_folder):
    root, broken = photo_folder
    splits = load_dataset(f"imagefolder:{root}", seed=0, val_fraction=0.5)
    assert splits.class_names == ["cat", "dog"]
    assert (len(splits.train), len(splits.val)) == (6, 6)
    assert torch.bincount(splits.val.labels).tolist() == [3, 3]
    assert sorted(path for path, _ in splits.skipped) == sorted(str(p) for p in broken)
    assert dict(splits.skipped)[str(broken[0])] == "empty file"
    assert splits.gamma_factor == 0.98 and splits.default_backbone == "efficientnet_b0"
    everything = splits.train.paths + splits.val.paths
    assert all(p.startswith(str(root)) for p in everything) and len(set(everything)) == 12
    for index in range(len(splits.train)):
        image, label = splits.train[index]
        assert image.shape == (3, 224, 224) and image.dtype == torch.float32
        assert 0.0 <= image.min() and image.max() <= 1.0
    assert splits.train.image_ids[0].startswith(("cat/", "dog/"))


def test_conversion_of_each_mode_keeps_the_colour():
    from PIL import Image

    red = Image.new("RGB", (4, 4), (220, 30, 30))
    assert to_rgb(red.convert("CMYK")).getpixel((1, 1)) == pytest.approx((220, 30, 30), abs=2)
    assert to_rgb(red.convert("L")).getpixel((1, 1)) == (red.convert("L").getpixel((1, 1)),) * 3
    rgba = red.convert("RGBA")
    rgba.putpixel((0, 0), (0, 0, 0, 0))
    assert to_rgb(rgba).getpixel((0, 0)) == (255, 255, 255)  # transparent → white, not black
    assert to_rgb(Image.new("I;16", (2, 2), 65535)).getpixel((0, 0)) == (255, 255, 255)


def test_split_is_seeded_and_the_decode_check_is_cached(photo_folder, monkeypatch):
    root, _ = photo_folder
    a = load_dataset(f"imagefolder:{root}", seed=1, val_fraction=0.5)
    import bla_core.image_datasets as image_datasets

    monkeypatch.setattr(image_datasets, "decode_problem", lambda path: pytest.fail("decoded again"))
    b = load_dataset(f"imagefolder:{root}", seed=1, val_fraction=0.5)
    c = load_dataset(f"imagefolder:{root}", seed=2, val_fraction=0.5)
    assert a.val.paths == b.val.paths and a.skipped == b.skipped
    assert {tuple(c.val.paths)} != {tuple(a.val.paths)} or len(a.val) == 0


def test_catsdogs_reads_the_petimages_layout(tmp_path):
    pets = tmp_path / "kagglecatsanddogs" / "PetImages"
    for i in range(5):
        write_photo(pets / "Cat" / str(i), "RGB", (200, 0, 0))
        write_photo(pets / "Dog" / str(i), "CMYK", (0, 0, 200))
    broken = write_broken_files(pets / "Dog")
    splits = load_dataset(f"catsdogs:{pets.parent}", seed=0, val_fraction=0.2)  # the parent folder works too
    assert splits.key == "catsdogs" and splits.class_names == ["cat", "dog"] and splits.default_epochs == 2
    assert (len(splits.train), len(splits.val)) == (8, 2)
    assert len(splits.skipped) == 2 and {p for p, _ in splits.skipped} == {str(p) for p in broken}
    assert set(splits.val.image_ids) <= {f"{c}/{i}.jpg" for c in ("Cat", "Dog") for i in range(5)}


def test_stanforddogs_uses_the_mat_file_lists(tmp_path):
    root = tmp_path / "stanford"
    breeds = ["n02085620-Chihuahua", "n02085782-Japanese_spaniel"]
    files = {"train": [], "test": []}
    for b, breed in enumerate(breeds):
        for i in range(3):
            write_photo(root / "Images" / breed / f"{breed[:9]}_{i}", "RGB")
            files["train" if i < 2 else "test"].append((f"{breed}/{breed[:9]}_{i}.jpg", b + 1))
    for name, entries in files.items():
        cells = np.empty((len(entries), 1), dtype=object)
        for row, (rel, _) in enumerate(entries):
            cells[row, 0] = np.array([rel])
        savemat(root / f"{name}_list.mat", {"file_list": cells, "labels": np.array([[b] for _, b in entries])})
    splits = load_dataset(f"stanforddogs:{root}")
    assert splits.class_names == ["Chihuahua", "Japanese spaniel"] and splits.fixed_split
    assert (len(splits.train), len(splits.val)) == (4, 2)
    assert splits.val.image_ids == ["n02085620-Chihuahua/n02085620_2.jpg", "n02085782-Japanese_spaniel/n02085782_2.jpg"]
    assert splits.val.labels.tolist() == [0, 1]


def test_cub_uses_its_metadata_files(tmp_path):
    root = tmp_path / "CUB_200_2011"
    classes = ["001.Black_footed_Albatross", "002.Laysan_Albatross"]
    images, labels, split = [], [], []
    for number in range(1, 7):
        cls = classes[(number - 1) % 2]
        rel = f"{cls}/bird_{number}.jpg"
        write_photo(root / "images" / cls / f"bird_{number}", "RGB")
        images.append(f"{number} {rel}")
        labels.append(f"{number} {(number - 1) % 2 + 1}")
        split.append(f"{number} {1 if number <= 4 else 0}")
    for name, lines in (("images.txt", images), ("image_class_labels.txt", labels), ("train_test_split.txt", split),
                        ("classes.txt", [f"{i + 1} {c}" for i, c in enumerate(classes)])):
        (root / name).write_text("\n".join(lines) + "\n")
    splits = load_dataset(f"cub:{tmp_path}")  # the parent of CUB_200_2011 works too
    assert splits.class_names == ["Black footed Albatross", "Laysan Albatross"]
    assert (len(splits.train), len(splits.val)) == (4, 2)
    assert splits.val.labels.tolist() == [0, 1]
    assert splits.title == "Bird species" and splits.gamma_factor == 0.98


def test_datasets_check_reports_classes_counts_and_unreadable_files(photo_folder, capsys):
    root, broken = photo_folder
    assert main(["datasets", "check", f"imagefolder:{root}", "--val-fraction", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "2 classes, 6 train / 6 val images" in out
    assert any(line.split() == ["cat", "3", "3"] for line in out.splitlines())
    assert "2 unreadable files skipped:" in out
    assert f"{broken[0]}: empty file" in out and str(broken[1]) in out


@pytest.mark.parametrize("spec, message", [
    ("imagefolder", "needs a path"),
    ("imagefolder:/no/such/folder", "dataset folder /no/such/folder does not exist"),
    ("cub:{tmp}", "cub: expected the file"),
    ("catsdogs:{tmp}", "has no Cat/ folder"),
])
def test_bad_dataset_paths_give_one_clear_error(tmp_path, capsys, spec, message):
    assert main(["datasets", "check", spec.format(tmp=tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1


def test_a_folder_of_only_broken_files_is_refused(tmp_path):
    write_broken_files(tmp_path / "a")
    write_broken_files(tmp_path / "b")
    with pytest.raises(BLAError, match="empty train or validation split"):
        load_dataset(f"imagefolder:{tmp_path}")
