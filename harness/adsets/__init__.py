"""AD image datasets on disk, shared by evaluation and question generation: folder layouts
(MVTec AD, VisA, MVTec LOCO, GoodsAD, DS-MVTec, a labelled folder), defect masks, and image
similarity. Imports neither harness.data nor question_gen."""
