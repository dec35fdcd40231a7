"""Files in and out of the window: open, paste, drop, copy, export the image or the mask, load a mask.

Open accepts images, projects (.inpaint) and OpenRaster (.ora); so do the command line, drag and drop and
Open Recent. A project or layered file always becomes the work (asking to save the current one first); an
image becomes the work when none is open, and a new layer otherwise (like placing a file in Photoshop).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from PySide6.QtCore import QMimeData, QTimer
from PySide6.QtGui import QGuiApplication, QImage
from PySide6.QtWidgets import QFileDialog

from inpaint_studio.core import imageio
from inpaint_studio.core.document import Document, Layer
from inpaint_studio.core.parameters import looks_like_parameters
from inpaint_studio.core.placement import centred_copy
from inpaint_studio.core.record import shown_parameters
from inpaint_studio.ui import qt_images
from inpaint_studio.ui.context import DocumentHost, StudioContext
from inpaint_studio.ui.controllers.generation import GenerationController
from inpaint_studio.ui.controllers.projects import ProjectController
from inpaint_studio.ui.document.commands import AddLayerCommand, mask_change

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.webp *.tif *.tiff *.bmp);;All files (*)"
OPEN_FILTER = (
    "Images, projects and OpenRaster (*.png *.jpg *.jpeg *.webp *.tif *.tiff *.bmp *.inpaint *.ora);;"
    "Inpaint Studio projects (*.inpaint);;OpenRaster (*.ora);;" + IMAGE_FILTER
)
EXPORT_FILTER = "PNG (*.png);;JPEG (*.jpg *.jpeg);;WebP (*.webp);;TIFF (*.tif *.tiff);;BMP (*.bmp)"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp"}
PROJECT_SUFFIX = ".inpaint"
ORA_SUFFIX = ".ora"
DOCUMENT_SUFFIXES = {PROJECT_SUFFIX, ORA_SUFFIX}  # always open as the document, never as a layer


class FileActions:
    """See the module docstring."""

    def __init__(
        self,
        ctx: StudioContext,
        host: DocumentHost,
        generation: GenerationController,
        projects: ProjectController,
    ) -> None:
        self.ctx, self.host, self.generation, self.projects = ctx, host, generation, projects

    # ---- opening ------------------------------------------------------------------------------------
    def open_dialog(self) -> None:
        start = str(self.ctx.settings.folder("last_dir"))
        path, _ = QFileDialog.getOpenFileName(self.ctx.window, "Open", start, OPEN_FILTER)
        if path:
            self.open_path(path)

    def open_path(self, path: str | os.PathLike[str], confirm: bool = True) -> bool:
        """Open an image, a project (.inpaint) or an OpenRaster file as the document (asking about unsaved
        work first); False if not opened. Errors (missing, damaged, unsupported file) show in the message bar.
        """
        suffix = Path(path).suffix.lower()
        if suffix == PROJECT_SUFFIX:
            return self.projects.open_project(path, confirm=confirm)
        if suffix == ORA_SUFFIX:
            return self.projects.open_ora(path, confirm=confirm)
        if confirm and not self.host.maybe_save():
            return False
        loaded = self.ctx.guarded(imageio.load_image, path)
        if loaded is None:
            return False
        document = Document.from_image(loaded.image, name="Background")
        document.metadata = {
            "path": str(path),
            "icc_profile": loaded.icc_profile,
            "exif": loaded.exif,
            "parameters": loaded.parameters,
        }
        self.host.set_document(document)
        self.host.opened(str(path))
        if loaded.parameters and looks_like_parameters(loaded.parameters):
            self.generation.offer_parameters(loaded.parameters)
        return True

    def open_or_insert(self, paths: list[str]) -> None:
        """Drop/paste rule: with no image open the first file opens and the rest become layers;
        with an image open every file becomes a new layer (like placing a file in Photoshop)."""
        for path in paths:
            if Path(path).suffix.lower() in DOCUMENT_SUFFIXES:
                self.open_path(path)  # a project or layered file replaces the work (asking to save it)
                continue
            if self.ctx.document.is_empty:
                self.open_path(path, confirm=False)
                continue
            loaded = self.ctx.guarded(imageio.load_image, path)
            if loaded is not None:
                self.insert_image_as_layer(loaded.image, Path(path).stem)

    def insert_image_as_layer(self, image: Image.Image, name: str) -> Layer | None:
        """Add an image as a new paint layer, centred on the document (cropped if larger); undoable."""
        doc = self.ctx.document
        if doc.is_empty:
            self.host.open_image(image, name)
            return None
        rgba = np.asarray(image.convert("RGBA"))
        layer = doc.new_layer(doc.unique_name(name))
        centred_copy(layer.pixels, rgba)
        active = doc.active_layer
        index = doc.index_of(active.id) + 1 if active is not None else None
        self.ctx.undo_stack.push(AddLayerCommand(doc, layer, index, f"Add “{layer.name}”"))
        h, w = rgba.shape[:2]
        if (w, h) != doc.size:
            self.ctx.messages.show_info(
                f"“{name}” is {w}×{h} and the image is {doc.width}×{doc.height}: it was centred as a new layer."
            )
        return layer

    # ---- clipboard and drops ------------------------------------------------------------------------
    def paste(self) -> None:
        """Ctrl+V: the clipboard's image (or image files) as a new document when none is open, else a layer."""
        mime = QGuiApplication.clipboard().mimeData()
        paths = local_image_paths(mime.urls()) if mime is not None and mime.hasUrls() else []
        if paths:
            self.open_or_insert(paths)
            return
        if mime is None or not mime.hasImage():
            self.ctx.messages.show_info("The clipboard holds no image to paste.")
            return
        image = qt_images.qimage_to_pil(QGuiApplication.clipboard().image())
        if image is None:
            self.ctx.messages.show_error("The clipboard image could not be read; copy it again and paste.")
            return
        if self.ctx.document.is_empty:
            self.host.open_image(image, "Pasted image")
        else:
            self.insert_image_as_layer(image, "Pasted")

    def copy_image(self) -> None:
        if self.ctx.require_image():
            QGuiApplication.clipboard().setImage(qt_images.pil_to_qimage(self.ctx.document.flattened()))
            self.ctx.messages.show_info("The visible image was copied to the clipboard.")

    def accepts_drop(self, mime: QMimeData) -> bool:
        return bool(mime.hasUrls() and local_image_paths(mime.urls(), any_file=True)) or mime.hasImage()

    def drop(self, mime: QMimeData) -> None:
        paths = local_image_paths(mime.urls(), any_file=True) if mime.hasUrls() else []
        if paths:
            # Let the drag finish before any question or slow load runs.
            QTimer.singleShot(0, lambda: self.ctx.guarded(self.open_or_insert, paths))
        elif mime.hasImage():
            image = qt_images.qimage_to_pil(QImage(mime.imageData()))
            if image is not None:
                QTimer.singleShot(0, lambda: self.ctx.guarded(self.insert_image_as_layer, image, "Dropped"))

    # ---- export -------------------------------------------------------------------------------------
    def export_dialog(self) -> bool:
        if not self.ctx.require_image():
            return False
        source = self.ctx.document.metadata.get("path") or ""
        stem = Path(source).stem if source else "image"
        start = Path(self.ctx.settings.export_dir or (Path(source).parent if source else Path.home()))
        path, _ = QFileDialog.getSaveFileName(
            self.ctx.window, "Export image", str(start / f"{stem}-edited.png"), EXPORT_FILTER
        )
        return bool(path) and self.export_image(path)

    def export_image(self, path: str | os.PathLike[str]) -> bool:
        """Write the flattened image (format by extension, keeping the ICC profile); True on success.

        Its "parameters" text is that of the generation it shows (core/record.py shown_parameters: the
        topmost visible result layer's), else the opened file's own, so other tools and "Use these
        parameters" read how it was made."""
        if not self.ctx.require_image():
            return False
        doc = self.ctx.document
        rgba = doc.composite()  # once: a 6000x4000 composite takes a noticeable moment
        image = Image.fromarray(rgba, "RGBA")
        if bool((rgba[..., 3] == 255).all()):
            image = image.convert("RGB")  # no alpha channel in the file when nothing is transparent
        meta = doc.metadata
        parameters = shown_parameters(doc, self.generation.recorder.history) or meta.get("parameters")
        written = self.ctx.guarded(
            imageio.save_image,
            image,
            path,
            parameters=parameters,
            icc_profile=meta.get("icc_profile"),
            exif=meta.get("exif"),
        )
        if written is None:
            return False
        if self.projects.path is None:
            # Not a project (yet): for an image-only workflow the export is the save.
            self.projects.mark_saved()
        self.ctx.settings.export_dir = str(Path(path).parent)
        self.ctx.messages.show_info(f"Exported {Path(path).name}.")
        return True

    def export_mask_dialog(self) -> None:
        if not self.ctx.require_image():
            return
        source = self.ctx.document.metadata.get("path") or ""
        stem = Path(source).stem if source else "image"
        start = self.ctx.settings.folder("export_dir")
        path, _ = QFileDialog.getSaveFileName(
            self.ctx.window, "Export mask", str(start / f"{stem}-mask.png"), EXPORT_FILTER
        )
        if path:
            self.export_mask(path)

    def export_mask(self, path: str | os.PathLike[str]) -> bool:
        """Write the mask as a greyscale image (white = repaint)."""
        if not self.ctx.require_image():
            return False
        mask = Image.fromarray(self.ctx.document.mask, "L")
        if self.ctx.guarded(imageio.save_image, mask, path) is None:
            return False
        self.ctx.messages.show_info(f"Exported the mask to {Path(path).name}.")
        return True

    def load_mask_dialog(self) -> None:
        if not self.ctx.require_image():
            return
        start = str(self.ctx.settings.folder("last_dir"))
        path, _ = QFileDialog.getOpenFileName(self.ctx.window, "Load mask", start, IMAGE_FILTER)
        if path:
            self.load_mask(path)

    def load_mask(self, path: str | os.PathLike[str]) -> bool:
        """Replace the mask by a mask image of the same size (undoable)."""
        if not self.ctx.require_image():
            return False
        mask = self.ctx.guarded(imageio.load_mask, path, self.ctx.document.size)
        if mask is None:
            return False
        self.ctx.canvas.finish_gesture()
        command = mask_change(self.ctx.document, np.asarray(mask, np.uint8), "Load mask")
        if command is not None:
            self.ctx.undo_stack.push(command)
        return True


def local_image_paths(urls: Iterable[Any], any_file: bool = False) -> list[str]:
    """Local file paths among urls; image extensions only unless any_file (load_image then explains)."""
    paths = []
    for url in urls:
        if url.isLocalFile():
            path = url.toLocalFile()
            if any_file or Path(path).suffix.lower() in IMAGE_SUFFIXES:
                paths.append(path)
    return paths
