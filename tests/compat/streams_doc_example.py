"""The pipeline of degirum_tools' streams documentation: a source, a resizing gizmo, a sink, start().

The resizing gizmo is the example of the ``Gizmo`` docs (clone the meta, append under
``get_tags()``, send), with its ``do_resize`` placeholder filled in with a NumPy
nearest-neighbour resize. The composition is built and started as the toolkit's overview
shows, and the results are read from ``sink()``.

tests/compat/test_streams_doc_example.py runs this file as it is on degirum_tools, and with
only the import line changed on dora_zmq, and compares what it prints.
"""

import numpy as np

import degirum_tools.streams as streams


def do_resize(image, width, height):
    rows = np.arange(height) * image.shape[0] // height
    cols = np.arange(width) * image.shape[1] // width
    return image[rows][:, cols]


class ResizingGizmo(streams.Gizmo):
    def __init__(self, width, height, stream_depth=10, allow_drop=False):
        super().__init__([(stream_depth, allow_drop)])
        self._w = width
        self._h = height

    def run(self):
        # For a single-input gizmo, iterate over all data in input #0
        for item in self.get_input(0):
            # If we were asked to abort, break out immediately
            if self._abort:
                break

            # item is a StreamData object: item.data is the image/frame, item.meta is the metadata
            input_image = item.data

            # 1) Do the resizing
            resized_image = do_resize(input_image, width=self._w, height=self._h)

            # 2) Update the metadata: clone the existing metadata first
            out_meta = item.meta.clone()
            out_meta.append(
                {"frame_width": self._w, "frame_height": self._h, "method": "nearest"},
                tags=self.get_tags(),
            )

            # 3) Send the processed item downstream
            self.send_result(streams.StreamData(resized_image, out_meta))


frames = [np.full((480, 640, 3), 10 * i, np.uint8) for i in range(6)]
frames[3] = np.full((240, 320), 7, np.uint8)  # a grey frame among colour ones

source = streams.IteratorSourceGizmo(iter(frames), fps=30.0)
resizer = ResizingGizmo(64, 48)
sink = streams.SinkGizmo()

source >> resizer >> sink

composition = streams.Composition(source, resizer, sink)
composition.start()  # runs the pipeline to the end

for result in sink():
    video = result.meta.find_last(streams.tag_video)
    resize = result.meta.find_last("ResizingGizmo")
    print(
        "frame",
        video["frame_id"],
        "from",
        (video["frame_width"], video["frame_height"]),
        "fps",
        video["fps"],
        "to",
        result.data.shape,
        "value",
        int(result.data[0, 0, 0]),
        "resize",
        resize,
        "via",
        [name for name, _ in streams.get_timing_info(result)],
    )
print("results", [source.result_cnt, resizer.result_cnt])
print("bottlenecks", composition.get_bottlenecks())
print("queues", sorted(composition.get_current_queue_sizes(), key=lambda d: list(d)[0]))
